"""A roll that fails after some Sentinel replicas have moved: the real state machine's Rollback
(which knows only the run, not the moves) must leave every sentinel listing exactly the live
replicas and peers, as a successful roll does, and nothing paused or steered."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling_sandbox.cloud.bridge import FIRST_NODE_INDEX_ENV
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.traffic.redis_sentinel import sentinel_state
from tests.conftest import E2E_FIRST_NODE_INDEX
from tests.e2e.conftest import Field
from tests.factories.redis import requires_redis
from tests.factories.redis_sentinel import MASTER, NS, REPLICAS, SENTINELS, SentinelField, wait_for

pytestmark = [pytest.mark.slow, requires_redis]


@pytest.fixture
def field(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Field, SentinelField]]:
    monkeypatch.setenv(FIRST_NODE_INDEX_ENV, E2E_FIRST_NODE_INDEX)  # away from the other Redis group
    with SandboxEnv(redis=True) as env:
        scenario = field_report(env, redis=True, redis_kinds=("sentinel",))
        group = SentinelField(env, scenario)
        wait_for(group.converged, 40, "the sentinels to converge", describe=group.describe)
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2"))), group


def test_rollback_after_replicas_moved_leaves_every_sentinel_listing_exactly_the_live_replicas(
    field: tuple[Field, SentinelField],
) -> None:
    f, group = field
    env = f.env
    uids = {p: group.pod(p)["metadata"]["uid"] for p in (MASTER, *REPLICAS, *SENTINELS)}
    # Given the API refuses to evict the master pod, whose node the plan puts last: the roll
    # fails after the replicas (and sentinels) have moved, before the group's last move resets
    # the sentinels
    fault = env.sandbox.faults.add(
        method="POST", path=rf"/namespaces/{NS}/pods/{MASTER}/eviction$", status=403
    )

    # When the real state machine runs the roll, fails there and rolls back
    with f.runner() as runner:
        result = runner.run(f.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])

    # Then the execution failed on that eviction, after at least one replica had moved
    assert result["status"] == "FAILED" and fault.fired >= 1, result
    assert "EvictionRejectedError" in json.dumps(result, default=str), result
    moved = [p for p in REPLICAS if group.pod(p)["metadata"]["uid"] != uids[p]]
    assert moved, "no replica moved before the failure"
    # ... and every sentinel lists exactly the live replicas and the other sentinels, with quorum
    state = sentinel_state(env, NS, "redis")
    assert state["stale_replicas"] == [] and state["quorum_ok"], state
    assert state["converged"], (state, group.describe())
    notes = [
        n
        for ev in history
        if ev["type"] == "LambdaFunctionSucceeded"
        for n in json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"]).get("notes") or []
    ]
    # ... because Rollback found stale entries and cleared them (by SENTINEL RESET, one sentinel at
    # a time; a moved sentinel keeps its myid, so its peers may also replace its old address on
    # their own before the reset's turn, and then no RESET is needed)
    assert any("stale sentinel entries to clear" in n for n in notes), notes
    assert any("every sentinel lists exactly the live replicas" in n for n in notes), notes
    # ... with no replica-priority left steered and the master taking writes (a paused one
    # would hold this SET past the client's 2 s timeout)
    for p in (MASTER, *REPLICAS):
        assert group.priority(p) == 100, p
    assert state["master_pod"] is not None
    with group.client(state["master_pod"]) as r:
        assert r.set("eks-rolling-rollback-check", "1")
