"""The field report's Sentinel procedure, made safe, end to end: the launch template changes and
the real state machine replaces every old node while a client writes through Sentinel. Redis
pods are moved by MoveRedisPods (replicas evicted and resynced, the master switched over with
CLIENT PAUSE and failed back, sentinels one at a time) through the Eviction API within their PDBs,
never by the generic drain."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling.services.redis.sentinel import PRIORITY_ANNOTATION
from eks_rolling_sandbox.cloud.bridge import FIRST_NODE_INDEX_ENV
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.traffic.redis_sentinel import SentinelWriterProcess, sentinel_report
from eks_rolling_sandbox.traffic.writers import SWITCHOVER_WRITE_GAP_BOUND_MS
from tests.conftest import E2E_FIRST_NODE_INDEX
from tests.e2e.conftest import Field
from tests.factories.redis import requires_redis
from tests.factories.redis_sentinel import (
    MASTER,
    NS,
    REPLICAS,
    SENTINELS,
    SentinelField,
    wait_for,
)

pytestmark = [pytest.mark.slow, requires_redis]


# The realistic profile as `make demo` runs it: its step clock runs 20x faster than the wall clock
# that Redis's own timers (a sentinel's INFO cycle) follow, which a procedure timing its commands by
# the step clock gets wrong (it did: 66-287 failed writes and a 6.5 s gap, only in this profile).
REALISTIC_FACTOR = 0.05


@pytest.fixture(params=["fast", "realistic"])
def field(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Field, SentinelField]]:
    monkeypatch.setenv(FIRST_NODE_INDEX_ENV, E2E_FIRST_NODE_INDEX)  # away from the other Redis group
    timing = (
        {"timing_profile": "realistic", "time_factor": REALISTIC_FACTOR}
        if request.param == "realistic"
        else {}
    )
    with SandboxEnv(redis=True, **timing) as env:  # type: ignore[arg-type]
        scenario = field_report(env, redis=True, redis_kinds=("sentinel",))
        group = SentinelField(env, scenario)
        wait_for(group.converged, 40, "the sentinels to converge", describe=group.describe)
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2"))), group


def _lambda_outputs(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"])
        for ev in history
        if ev["type"] == "LambdaFunctionSucceeded"
    ]


def test_a_roll_moves_redis_under_sentinel_with_no_acknowledged_write_lost(
    field: tuple[Field, SentinelField], capfd: pytest.CaptureFixture[str]
) -> None:
    f, group = field
    env = f.env
    # Given the field-report cluster with Redis under Sentinel on its old nodes, and a client
    # writing through Sentinel for the whole roll (in its own process: it measures Redis, not
    # this busy process)
    before = f.state()
    old_ids = {i.instance_id for i in before.instances}
    redis_pods = [MASTER, *REPLICAS, *SENTINELS]
    old_uids = {p: group.pod(p)["metadata"]["uid"] for p in redis_pods}
    writer = SentinelWriterProcess.for_group(
        env, NS, "redis", interval_s=0.005, max_writes=10**6, max_seconds=400
    )
    writer.start()
    mark = env.sandbox.request_log.mark()
    t0 = writer_t0 = time.monotonic()
    wall0 = time.time()

    # When the operator bumps the launch template and the real state machine runs
    with f.runner() as runner:
        result = runner.run(f.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    roll_s = time.monotonic() - t0
    report = writer.stop(settle_s=1.0)  # verified: every acknowledged write read back
    summary = sentinel_report(env, NS, "redis", report)

    outputs = _lambda_outputs(history)
    actions = "\n".join(a for o in outputs for a in o.get("actions") or [])
    gaps = [(round(g.started_at - writer_t0, 3), g.length_ms) for g in report.gaps]
    print(f"roll {roll_s:.0f}s; moves (s): {_move_durations(history)}; writer gaps (at s, ms): {gaps}")
    print(f"sentinel report: {json.dumps({k: v for k, v in summary.items() if k != 'sentinels'})}")
    for at, action in _timed_actions(history, wall0):
        print(f"  {at:7.2f}s {action}")

    # Then the execution succeeded and every old instance is gone
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after = f.state()
    assert not [i for i in after.instances if i.instance_id in old_ids]
    assert not [i for i in after.instances if AsgOps.is_outdated(i, after)]
    # ... every Redis pod was recreated (new UID) on a new node
    assert all(group.pod(p)["metadata"]["uid"] != old_uids[p] for p in redis_pods)
    # ... no acknowledged write was lost, and each master switchover held writes briefly
    assert summary["acked_writes_lost"] == 0 and report.acked > 5000, (summary, report)
    # ... and a client with an application's policy (timeout above the bound, the idempotent SET
    # retried on a fresh client within the bound after its connection was dropped) saw no failed
    # write; the switchover gaps below bound how long any write was held or retried
    assert summary["write_errors"] == 0, json.dumps({k: v for k, v in summary.items() if k != "sentinels"})
    assert len(summary["switchover_gaps_ms"]) == 2, summary  # out to a replica, and back
    assert all(0 < g <= SWITCHOVER_WRITE_GAP_BOUND_MS for g in summary["switchover_gaps_ms"]), actions
    # ... every sentinel lists exactly the live replicas, quorum holds, and the master is back
    # on the pod the operator placed it on (failback)
    assert summary["stale_replicas"] == [] and summary["quorum_ok"], summary
    assert summary["master_pod"] == MASTER and group.converged(), group.describe()
    for p in (MASTER, *REPLICAS):
        assert group.priority(p) == 100
        assert PRIORITY_ANNOTATION not in (group.pod(p)["metadata"].get("annotations") or {})

    # ... the history records each pod's move, each switchover and each sentinel reset
    for p in (*REPLICAS, MASTER):
        assert re.search(rf"redis/{p}: evicted pod {p} ", actions), (p, actions)
        assert re.search(rf"redis/{p}: {p} back on \S+ at \S+ \(uid [^)]+\), in sync with master", actions), p
    for s in SENTINELS:
        assert re.search(rf"redis/{s}: sentinel {s} back on .* quorum OK on every sentinel", actions), s
    switches = re.findall(r"switchover (\S+) \(\S+\) -> (\S+) \(", actions)
    assert len(switches) == 2 and switches[0][0] == MASTER and switches[1] == (switches[0][1], MASTER), (
        switches
    )
    assert len(re.findall(r"SENTINEL FAILOVER via", actions)) == 2
    resets = re.findall(r"SENTINEL RESET mymaster on (redis-sentinel-\d)", actions)
    assert resets and len(resets) == len(set(resets)), actions  # one round, one sentinel at a time
    # ... the group's password is in no state's input or output and in no log line
    captured = capfd.readouterr()
    assert group.password not in json.dumps(history, default=str)
    assert group.password not in captured.out + captured.err
    # ... and the tool moved the Redis pods one by one, each through one accepted eviction
    # (the scenario's PDBs held), never by DELETE
    log = env.sandbox.request_log.entries(mark)
    assert not [e for e in log if e.method == "DELETE" and f"/namespaces/{NS}/pods/" in e.path]
    evictions = [
        e.path.split("/pods/")[1].split("/")[0]
        for e in log
        if e.path.endswith("/eviction") and f"/namespaces/{NS}/" in e.path and e.status == 201
    ]
    assert sorted(evictions) == sorted(redis_pods), evictions


def _timed_actions(history: list[dict[str, Any]], wall0: float) -> list[tuple[float, str]]:
    """MoveRedisPods actions with the seconds since `wall0` when their round ended."""
    out = []
    for ev in history:
        if ev["type"] == "LambdaFunctionSucceeded":
            for a in json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"]).get("actions") or []:
                out.append((ev["timestamp"].timestamp() - wall0, a))
    return out


def _move_durations(history: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds from a Redis pod's first MoveRedisPods round to the round that finished it."""
    first: dict[str, Any] = {}
    done: dict[str, Any] = {}
    for ev in history:
        if ev["type"] != "LambdaFunctionSucceeded":
            continue
        out = json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"])
        for m in out.get("moves") or []:
            first.setdefault(m["pod"], ev["timestamp"])
            if m["done"]:
                done.setdefault(m["pod"], ev["timestamp"])
    return {p: round((done[p] - first[p]).total_seconds(), 1) for p in sorted(done)}
