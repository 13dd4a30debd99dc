"""A roll of the field-report cluster with a Redis Cluster (2 StatefulSets in 2 AZs, 3 masters and
3 replicas on real redis-server processes) through the real state machine, with a RedisCluster
client writing the whole time: every pod moves to a new node (masters through a temporary
replica), no acknowledged write is lost, no slot is ever uncovered, no temporary node survives
the FORGET ban window, and every node keeps its identity and every master its slots."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from redis.cluster import ClusterNode, RedisCluster

from eks_rolling.aws.asg import AsgOps
from eks_rolling.labels import LABEL_TOPOLOGY_ZONE, REDIS_PORT, REDIS_TEMP_FOR
from eks_rolling_sandbox.cloud.bridge import FIRST_NODE_INDEX_ENV
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.redis.procs import cluster_info, cluster_nodes
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.traffic.redis_cluster import (
    ProcessClusterWriter,
    SlotCoverageMonitor,
    cluster_report,
)
from eks_rolling_sandbox.traffic.writers import ClusterWriter
from tests.conftest import E2E_FIRST_NODE_INDEX
from tests.e2e.conftest import Field
from tests.factories.redis import requires_redis

pytestmark = [pytest.mark.slow, requires_redis, pytest.mark.timeout(420)]
log = logging.getLogger(__name__)
NS, GROUP = "redis", "redis-cluster"


@pytest.fixture
def cluster_field(monkeypatch: pytest.MonkeyPatch) -> Iterator[Field]:
    monkeypatch.setenv(FIRST_NODE_INDEX_ENV, E2E_FIRST_NODE_INDEX)  # away from the other Redis group
    with SandboxEnv(redis=True) as env:
        scenario = field_report(env, redis=True, redis_kinds=("cluster",))
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2")))


def _actions(history: list[dict[str, object]]) -> list[str]:
    out: list[str] = []
    for ev in history:
        details = ev.get("lambdaFunctionSucceededEventDetails")
        if isinstance(details, dict) and '"moves"' in str(details.get("output")):
            out += json.loads(str(details["output"])).get("actions") or []
    return out


def test_roll_moves_every_redis_cluster_node_with_no_acknowledged_write_lost(cluster_field: Field) -> None:
    field = cluster_field
    env, layout = field.env, field.scenario.extras["redis_cluster"]
    store = env.sandbox.store
    # Given the cluster: 3 masters, each with its replica in the other zone, one pod per old node
    before = field.state()
    old_ids = {i.instance_id for i in before.instances}
    old_nodes = {
        n["metadata"]["name"]
        for n in store.all("nodes")
        if n["spec"]["providerID"].rsplit("/", 1)[-1] in old_ids
    }
    pods_before = {name: store.get("pods", NS, name) for name in layout["ips"]}
    assert len(layout["masters"]) == 3 and {p["spec"]["nodeName"] for p in pods_before.values()} <= old_nodes
    monitor = SlotCoverageMonitor(env, NS, GROUP).start()
    # The writer runs in its own process: in the sandbox's it would time the GIL, not Redis.
    writer = ProcessClusterWriter(
        [(ip, REDIS_PORT) for ip in layout["ips"].values()],
        interval_s=0.005,
        max_writes=100_000,
        max_seconds=300,
    ).start()

    # When the launch template changes and the state machine rolls the ASG
    t0 = time.monotonic()
    with field.runner(redis_phase_timeout_s="120") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
        invocations = list(runner.stats.invocations)
    roll_s = time.monotonic() - t0
    writer.stop()
    # Read back through the pods' current addresses (every original IP changed).
    writer.verify([(store.get("pods", NS, name)["status"]["podIP"], REDIS_PORT) for name in layout["ips"]])
    report = cluster_report(env, NS, GROUP, writer.report(), monitor)
    log.warning("roll %.1fs; redis cluster report: %s", roll_s, json.dumps(report, default=str))

    # Then the execution succeeded and every old instance was replaced
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after = field.state()
    assert not [i for i in after.instances if i.instance_id in old_ids or AsgOps.is_outdated(i, after)]
    assert not [i for i in invocations if i.error]
    # ... with a client writing all along: nothing acknowledged was lost, no slot ever uncovered,
    # and at most one shard's master away from its pod at any time
    assert report["acked_writes"] > 1000 and report["acked_writes_lost"] == 0, report
    assert report["uncovered_slots_max"] == 0 and report["cluster_state_not_ok"] == 0, report
    assert report["checks"] > 100 and report["masters_away_max"] == 1, report
    # ... a temporary node per master, from the pod's template, on a new node of the master's
    # zone, in no Service and owned by nobody; none left in any view after the FORGET ban window
    assert report["temp_nodes_seen"] == 3 and len(report["temp_pods"]) == 3, report
    for temp in report["temp_pods"].values():
        assert temp["node"] not in old_nodes and temp["zone"] == layout["zones"][temp["for"]], temp
        assert not temp["in_endpoints"] and temp["owners"] == [], temp
        assert temp["for"] in layout["masters"]
    assert report["leftover_temp_nodes"] == 0 and report["leftover_checked_s_after_last_temp"] >= 65, report
    assert not [p for p in store.all("pods") if REDIS_TEMP_FOR in (p["metadata"].get("labels") or {})]
    # ... every pod back on a new node in its zone with its node id, every master with its slots
    assert report["node_ids_kept"] and report["masters_in_place"], report
    for name, old in pods_before.items():
        pod = store.get("pods", NS, name)
        assert pod is not None and pod["metadata"]["uid"] != old["metadata"]["uid"]
        assert (
            pod["spec"]["nodeName"] not in old_nodes
            and field.env.sandbox.store.get("nodes", None, pod["spec"]["nodeName"])["metadata"]["labels"][
                LABEL_TOPOLOGY_ZONE
            ]
            == layout["zones"][name]
        )
        ip = pod["status"]["podIP"]
        info = cluster_info(ip, REDIS_PORT)
        assert info["cluster_state"] == "ok" and info["cluster_slots_ok"] == "16384"
        me = next(n for n in cluster_nodes(ip, REDIS_PORT) if "myself" in n["flags"])
        assert (me["id"], me["ip"]) == (layout["node_ids"][name], ip), "the node's own view has its new IP"
    # ... and the execution history tells each step of each move
    actions = _actions(history)
    assert sum("CLUSTER FAILOVER on it" in a for a in actions) == 3, actions
    assert sum("CLUSTER FORGET" in a for a in actions) == 3, actions
    assert sum("is a replica of" in a for a in actions) == 3, actions
    log.warning("redis cluster actions:\n%s", "\n".join(actions))


def test_a_failure_after_the_first_failover_rolls_back_to_a_consistent_cluster(cluster_field: Field) -> None:
    field = cluster_field
    env, layout = field.env, field.scenario.extras["redis_cluster"]
    store = env.sandbox.store
    monitor = SlotCoverageMonitor(env, NS, GROUP).start()
    writer = ClusterWriter(
        [(ip, REDIS_PORT) for ip in layout["ips"].values()], interval_s=0.01, max_seconds=300
    )
    writer.start()
    # Given the API refuses to evict any master pod (after the first failover to a temporary node)
    masters = "|".join(layout["masters"])
    fault = env.sandbox.faults.add(
        method="POST", path=rf"/namespaces/{NS}/pods/({masters})/eviction$", status=403
    )
    # When the roll runs
    with field.runner(redis_phase_timeout_s="120") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    writer.stop()
    now_ips = [(store.get("pods", NS, name)["status"]["podIP"], REDIS_PORT) for name in layout["ips"]]
    writer.verify(
        lambda: RedisCluster(
            startup_nodes=[ClusterNode(ip, port) for ip, port in now_ips], decode_responses=True
        )
    )
    monitor.stop()
    # Then the execution failed at that eviction and Rollback, which knows only the run, failed the
    # slots back to the original master, forgot the temporary node on every node and deleted it
    assert result["status"] == "FAILED" and fault.fired == 1
    rollback = [
        json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"])
        for ev in history
        if ev["type"] == "LambdaFunctionSucceeded"
        and '"error"' in ev["lambdaFunctionSucceededEventDetails"]["output"]
    ]
    notes = [n for r in rollback for n in r.get("notes", [])]
    assert any("CLUSTER FAILOVER on" in n for n in notes) and any("CLUSTER FORGET" in n for n in notes), notes
    assert not [p for p in store.all("pods") if REDIS_TEMP_FOR in (p["metadata"].get("labels") or {})]
    # ... leaving every master where it was, every node whole, nothing lost, no slot ever uncovered
    ids = set(layout["node_ids"].values())
    now = monitor.current()
    assert now.masters == monitor.start_masters and now.ids == monitor.start_ids
    for name in layout["ips"]:
        ip = store.get("pods", NS, name)["status"]["podIP"]
        assert cluster_info(ip, REDIS_PORT)["cluster_state"] == "ok"
        assert {n["id"] for n in cluster_nodes(ip, REDIS_PORT)} == ids, name
    assert monitor.uncovered_max == 0 and monitor.masters_away_max == 1
    # Writes went on through the whole roll (a rate, not a count: the count depends on the machine)
    report = writer.report()
    assert report.lost == 0 and report.acked >= 10 * report.duration_s, report
