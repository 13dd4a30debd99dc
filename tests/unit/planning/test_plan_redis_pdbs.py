"""The plan sees a Redis StatefulSet's PodDisruptionBudget as MoveRedisPods will meet it: the Redis
steps evict their pods, so a PDB that can never allow an eviction blocks the roll, named."""

from __future__ import annotations

from eks_rolling.planning import Policy, build_plan
from tests.factories.planning import pdb, sentinel_group

REDIS = Policy(redis_supported=True)


def test_a_redis_pdb_that_never_allows_an_eviction_is_a_blocker_naming_it() -> None:
    # Given the master's StatefulSet under a PDB with minAvailable 1 of its 1 pod (as with
    # maxUnavailable 0): the switchover can run, but the pod can never be evicted afterwards
    never = pdb("redis-master", ns="redis", allowed=0, healthy=1, desired=1, expected=1)
    # When the roll is planned with the Redis steps on
    plan = build_plan(sentinel_group(never), REDIS)
    # Then it is blocked, by that PDB, naming the Redis pod and group it would strand
    assert plan.blocked
    (blocker,) = plan.blockers
    assert blocker.kind == "pdb-no-headroom" and blocker.ref == "redis/redis-master"
    assert "redis/redis-master" in blocker.message and "never allows an eviction" in blocker.message
    assert "Redis pod redis/redis-master-0 of group redis/redis on node-i-m" in blocker.message


def test_a_redis_pdb_that_allows_one_move_at_a_time_does_not_block() -> None:
    # Given maxUnavailable 1 on each StatefulSet (the field-report scenario's Redis PDBs)
    allowing = (
        pdb("redis-master", ns="redis", allowed=1, healthy=1, desired=0, expected=1),
        pdb("redis-replica", ns="redis", allowed=1, healthy=2, desired=1, expected=2),
    )
    plan = build_plan(sentinel_group(*allowing), REDIS)
    # Then the plan goes ahead: the Redis steps take turns within the budget
    assert not plan.blocked and not plan.findings


def test_a_redis_pdb_with_no_disruption_right_now_warns() -> None:
    busy = pdb("redis-replica", ns="redis", allowed=0, healthy=1, desired=1, expected=2)
    plan = build_plan(sentinel_group(busy), REDIS)
    assert not plan.blocked
    assert [(f.kind, f.ref) for f in plan.findings] == [("pdb-no-disruptions-now", "redis/redis-replica")]


def test_a_redis_pod_under_two_pdbs_is_a_blocker() -> None:
    # Given a second PDB over the replica's label: the eviction API answers 500
    one = pdb("redis-replica", ns="redis")
    two = pdb("redis-all", ns="redis", app="redis-replica")
    plan = build_plan(sentinel_group(one, two), REDIS)
    assert [(f.kind, f.ref) for f in plan.blockers] == [("multiple-pdbs", "redis/redis-replica-0")]
    assert "redis/redis-replica, redis/redis-all" in plan.blockers[0].message


def test_without_the_redis_steps_a_redis_pod_blocks_as_before() -> None:
    never = pdb("redis-master", ns="redis", allowed=0, healthy=1, desired=1, expected=1)
    plan = build_plan(sentinel_group(never), Policy(redis_supported=False))
    assert sorted({f.kind for f in plan.blockers}) == ["redis"]
