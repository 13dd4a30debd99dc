"""Redis pods under Sentinel respect the user's PodDisruptionBudgets (they leave through the
Eviction API), and a roll that stops after a replica moved leaves no stale sentinel entry once
cleanup (what RestoreCluster and Rollback run) is done. Real redis-server and sentinel processes;
the field-report scenario puts a maxUnavailable 1 PDB on each of the group's StatefulSets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from eks_rolling.errors import DrainTimeoutError
from eks_rolling.models import MoveRedisPodsInput, PlanRollInput
from eks_rolling.services.redis import move_redis_pods
from eks_rolling.services.roll import plan_roll
from tests.factories.redis_sentinel import (
    MASTER,
    NS,
    REPLICAS,
    SENTINELS,
    SentinelField,
    requires,
    wait_for,
)

pytestmark = [*requires, pytest.mark.slow, pytest.mark.timeout(240)]


def _set_max_unavailable(f: SentinelField, pdb: str, value: int) -> None:
    """Through the API (as an operator would), then until the disruption controller caught up."""
    with f.env.applied(**f.settings):
        kube = f.deps().kube(f.env.cluster_name)
        kube.policy.patch_namespaced_pod_disruption_budget(pdb, NS, {"spec": {"maxUnavailable": value}})

    def settled() -> bool:
        obj = f.env.sandbox.store.get("poddisruptionbudgets", NS, pdb)
        assert obj is not None
        st = obj.get("status") or {}
        return bool(
            st.get("observedGeneration") == obj["metadata"].get("generation")
            and st.get("disruptionsAllowed") == min(value, st.get("currentHealthy", 0))
        )

    wait_for(settled, 10, f"PDB {pdb} at maxUnavailable {value}")


def _pod_requests(f: SentinelField, since: float, pod: str) -> list[tuple[str, str, int]]:
    return [
        (e.method, e.path.rsplit(f"/pods/{pod}", 1)[-1] or "/", e.status)
        for e in f.env.sandbox.request_log.entries(since)
        if e.is_write and f"/namespaces/{NS}/pods/{pod}" in e.path and e.method != "PATCH"
    ]


def test_a_replica_waits_for_its_pdb_then_fails_naming_it_and_moves_once_it_allows(
    sentinel: SentinelField,
) -> None:
    victim = REPLICAS[1]
    uid = sentinel.pod(victim)["metadata"]["uid"]
    pdb = sentinel.env.sandbox.store.get("poddisruptionbudgets", NS, "redis-replica")
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1  # the scenario's PDB
    # Given the replicas' PDB allows no disruption (maxUnavailable 0) and a 5 s phase deadline
    _set_max_unavailable(sentinel, "redis-replica", 0)
    # Then a plan (a dry run, the launch template bumped) names that PDB as a blocker
    sentinel.scenario.bump_launch_template()
    with sentinel.env.applied(**sentinel.settings):
        dry = sentinel.ctx.model_copy(update={"dry_run": True})
        plan = plan_roll(PlanRollInput(ctx=dry), sentinel.deps())
    assert ("pdb-no-headroom", "redis/redis-replica") in [(b.kind, b.ref) for b in plan.blockers], plan
    sentinel.settings["redis_phase_timeout_s"] = "5"
    node = sentinel.retire(victim)
    mark = sentinel.env.sandbox.request_log.mark()

    # When MoveRedisPods runs for the replica's node: each refusal backs off as the drain does
    # (5 s base, doubling, jitter 0.5-1), so a long refusal costs few rounds of history
    out = None
    waits = []
    with sentinel.env.applied(**sentinel.settings):
        for _ in range(3):
            out = move_redis_pods(MoveRedisPodsInput(ctx=sentinel.ctx, node=node, redis=out), sentinel.deps())
            waits.append(out.next_wait_s)
    assert out is not None and out.moves[0].data["throttled"] == 2, out
    assert waits[0] == 0 and 3 <= waits[1] <= 5 and 5 <= waits[2] <= 10, waits
    with pytest.raises(DrainTimeoutError) as failed:
        sentinel.drive(node, timeout=60, out=out)

    # Then it waited on the 429s and, past the phase's deadline, stopped naming the pod and PDB
    assert "redis/redis-replica-1: phase move timed out" in str(failed.value)
    assert "PodDisruptionBudget redis/redis-replica" in str(failed.value)
    # ... the pod was never deleted: only refused evictions reached the API
    calls = _pod_requests(sentinel, mark, victim)
    assert len(calls) >= 2 and set(calls) == {("POST", "/eviction", 429)}, calls
    assert sentinel.pod(victim)["metadata"]["uid"] == uid

    # When the PDB allows one disruption again and the move runs
    _set_max_unavailable(sentinel, "redis-replica", 1)
    sentinel.settings["redis_phase_timeout_s"] = "60"
    mark = sentinel.env.sandbox.request_log.mark()
    out, actions = sentinel.drive(node)

    # Then the replica left through one accepted eviction (no DELETE) and is back in sync
    assert out.done and _pod_requests(sentinel, mark, victim) == [("POST", "/eviction", 201)]
    assert sentinel.pod(victim)["metadata"]["uid"] != uid
    assert any(f"evicted pod {victim} " in a for a in actions), actions


def _sentinel_views(f: SentinelField) -> dict[str, Any]:
    return {
        s: (sorted(f.sentinel_replica_ips(s)), int(f.sentinel_master(s)["num-other-sentinels"]))
        for s in SENTINELS
    }


def test_cleanup_after_a_roll_that_stopped_after_a_replica_moved_leaves_only_live_replicas(
    sentinel: SentinelField,
) -> None:
    # Given a roll retiring the master's node and a replica's: the replica moves first, and its
    # move defers the sentinel reset to the group's last move (the master's)
    victim = REPLICAS[0]
    old_ip = sentinel.ip(victim)
    node = sentinel.retire(victim, MASTER)
    out, actions = sentinel.drive(node)
    assert out.done and any("sentinel reset deferred" in a for a in actions), actions
    new_ip = sentinel.ip(victim)
    assert new_ip != old_ip
    # ... so the sentinels that stayed list the moved replica's old address as well as its new
    # one (a sentinel that shared its node moved too, and started afresh)
    wait_for(
        lambda: all(new_ip in sentinel.sentinel_replica_ips(s) for s in SENTINELS),
        30,
        "the new replica known",
    )
    stale = [s for s in SENTINELS if old_ip in sentinel.sentinel_replica_ips(s)]
    assert stale, sentinel.describe()

    # When the roll fails there and Rollback runs the Redis cleanup (it knows only the run)
    t0 = time.monotonic()
    notes = sentinel.cleanup()
    print(f"cleanup took {time.monotonic() - t0:.1f}s:", *notes, sep="\n  ")

    # Then every sentinel lists exactly the live replicas (as after a successful roll), knows its
    # 2 peers and has quorum, the master unchanged
    live = sorted(sentinel.ip(r) for r in REPLICAS)
    assert _sentinel_views(sentinel) == {s: (live, 2) for s in SENTINELS}, (notes, sentinel.describe())
    assert sentinel.converged(MASTER) and sentinel.health().problems == []
    for s in SENTINELS:
        with sentinel.client(s) as c:
            assert str(c.execute_command("SENTINEL", "CKQUORUM", "mymaster")).startswith("OK")
    # ... one sentinel reset at a time, each converged before the next
    resets = [n.split(" on ")[1].split(" ")[0] for n in notes if "SENTINEL RESET mymaster on" in n]
    assert set(stale) <= set(resets) and len(resets) == len(set(resets)), notes
    assert sum("converged" in n for n in notes) == len(resets), notes

    # When cleanup runs again (RestoreCluster after a retried Rollback), it changes nothing
    again = sentinel.cleanup()
    assert not [n for n in again if "SENTINEL RESET" in n], again
