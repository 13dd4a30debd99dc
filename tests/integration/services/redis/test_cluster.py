"""Moving Redis Cluster pods off a tainted node with the real procedure, one MoveRedisPods round
at a time (as the state machine calls it), on real redis-server nodes with a client writing."""

from __future__ import annotations

import logging

import pytest

from eks_rolling.labels import LABEL_RUN, REDIS_GROUP, REDIS_PORT, REDIS_TEMP_FOR
from eks_rolling_sandbox.redis import procs as redis_procs
from eks_rolling_sandbox.redis.runtime import PROCESS_ANNOTATION
from tests.factories.redis_cluster import NS, RUN, ClusterField, requires

pytestmark = [*requires, pytest.mark.timeout(240)]
log = logging.getLogger(__name__)


def _in_order(actions: list[str], *fragments: str) -> None:
    at = 0
    for fragment in fragments:
        at = next((i for i in range(at, len(actions)) if fragment in actions[i]), -1)
        assert at >= 0, (fragment, actions)


def test_plan_health_passes_a_healthy_cluster_and_blocks_a_master_without_replica(
    cluster: ClusterField,
) -> None:
    # Given the healthy cluster: no problem, and the 3 masters named
    health = cluster.health()
    assert health.problems == [] and health.master_pods == sorted(cluster.layout["masters"])
    # When a replica is pointed at another master (what replica migration leaves behind)
    orphaned = cluster.master_pod(0)
    replica = next(r for r, m in cluster.layout["replica_of"].items() if m == orphaned)
    other = next(m for m in cluster.layout["masters"] if m != orphaned)
    with redis_procs.admin_client(cluster.ip(replica), REDIS_PORT, None) as r:
        r.execute_command("CLUSTER", "REPLICATE", cluster.layout["node_ids"][other])
    redis_procs.wait_until(lambda: bool(cluster.health().problems), 10)
    # Then the plan is blocked, naming the master left without a replica
    problems = cluster.health().problems
    assert any(
        f"master {cluster.layout['node_ids'][orphaned][:8]}" in p and "has no replica" in p for p in problems
    )


def test_a_master_moves_through_a_temporary_replica_with_every_round_run_twice(cluster: ClusterField) -> None:
    master = cluster.master_pod(0)
    before = cluster.pod(master)
    zone = cluster.layout["zones"][master]
    writer = cluster.writer()
    # When its node's moves run until the temporary node has met the cluster
    target = cluster.target(master)
    out, actions = cluster.drive(target, until_phase="temp_join", repeat=True)
    # Then the temporary pod comes from the StatefulSet's template, runs on a new node in the
    # master's zone, has an empty data volume, and is in no selector: not adopted, no endpoint
    (temp,) = cluster.temp_pods()
    md, spec = temp["metadata"], temp["spec"]
    assert md["name"] == f"{master}-eksr-tmp" and not md.get("ownerReferences")
    assert set(md["labels"]) == {REDIS_TEMP_FOR, LABEL_RUN, REDIS_GROUP}
    assert md["labels"][LABEL_RUN] == RUN and md["annotations"][PROCESS_ANNOTATION] == "redis-cluster"
    assert {"name": "data", "emptyDir": {}} in spec["volumes"]
    assert spec["containers"][0]["image"] == before["spec"]["containers"][0]["image"]
    assert cluster.zone_of_node(spec["nodeName"]) == zone and spec["nodeName"] in cluster.new_nodes(zone)
    endpoints = cluster.env.sandbox.store.get("endpoints", NS, "redis-cluster-headless")
    assert temp["status"]["podIP"] not in str(endpoints)
    assert len(cluster.env.sandbox.pods(NS, "statefulset=redis-cluster-a")) == 3
    # When the move runs to the end, every round twice (a Step Functions retry after each)
    out, more = cluster.drive(target, start=out, repeat=True)
    actions += more
    # Then the master is back on a new node of its zone with its node id and its slots, the
    # temporary node is forgotten everywhere and deleted, and no acknowledged write was lost
    after = cluster.pod(master)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["nodeName"] in cluster.new_nodes(zone)
    cluster.assert_consistent(masters=cluster.layout["slots"])
    assert cluster.temp_pods() == []
    assert cluster.lost(writer) == 0
    _in_order(
        actions,
        "is master of slots",
        "CLUSTER MEET",
        "CLUSTER REPLICATE",
        "CLUSTER FAILOVER on it",
        "failover verified on all 7 nodes",
        f"back on new node {after['spec']['nodeName']}",
        f"CLUSTER FAILOVER on {master}",
        "failback verified on all 7 nodes",
        "CLUSTER FORGET",
        "temporary node gone from all 6 nodes",
    )
    assert out.done and out.moves[0].data["total_s"] > 0


def test_a_replica_is_deleted_and_awaited_until_synced_and_announced_with_its_new_ip(
    cluster: ClusterField,
) -> None:
    replica, master = next(iter(sorted(cluster.layout["replica_of"].items())))
    before = cluster.pod(replica)
    _, actions = cluster.drive(cluster.target(replica))
    after = cluster.pod(replica)
    assert (
        after["metadata"]["uid"] != before["metadata"]["uid"]
        and after["status"]["podIP"] != before["status"]["podIP"]
    )
    assert after["spec"]["nodeName"] in cluster.new_nodes(cluster.layout["zones"][replica])
    # its own stale view (redis#4645) was fixed, and it still replicates the same master
    _in_order(actions, "is a replica of", "own view still had its old IP", "back on new node")
    cluster.assert_consistent(masters=cluster.layout["slots"])
    me = next(n for n in cluster.nodes_view(replica) if "myself" in n["flags"])
    assert me["master_id"] == cluster.layout["node_ids"][master]
    assert redis_procs.info(after["status"]["podIP"], REDIS_PORT, "replication")["master_link_status"] == "up"
    assert cluster.temp_pods() == []
