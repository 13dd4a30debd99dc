"""AsgLock against moto's DynamoDB: conditional writes decide who rolls a group."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from eks_rolling.aws.lock import AsgLock, create_lock_table
from eks_rolling.errors import RollInProgressError

TABLE = "eks-rolling-locks"
T0 = 1_800_000_000.0
TTL = 3600


@pytest.fixture
def ddb(clients: dict[str, Any]) -> Any:
    create_lock_table(clients["dynamodb"], TABLE)
    return clients["dynamodb"]


@pytest.fixture
def lock(ddb: Any) -> AsgLock:
    return AsgLock(ddb, TABLE)


def item(ddb: Any, asg: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = ddb.get_item(
        TableName=TABLE, Key={"lock_key": {"S": f"asg#{asg}"}}, ConsistentRead=True
    ).get("Item")
    return found


def test_lock_table_is_on_demand_with_ttl_and_creating_it_twice_is_fine(ddb: Any) -> None:
    create_lock_table(ddb, TABLE)

    table = ddb.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "lock_key", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_two_owners_race_and_exactly_one_wins(lock: AsgLock) -> None:
    owners = [f"arn:aws:states:us-east-1:123456789012:execution:roll:exec-{n}" for n in range(2)]
    barrier = threading.Barrier(len(owners))
    outcome: dict[str, BaseException | None] = {}

    def contend(owner: str) -> None:
        barrier.wait()
        try:
            lock.acquire("workers", owner, ttl_s=TTL, now=T0)
            outcome[owner] = None
        except BaseException as exc:  # collected and asserted below
            outcome[owner] = exc

    threads = [threading.Thread(target=contend, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    winners = [o for o, exc in outcome.items() if exc is None]
    losers = [exc for exc in outcome.values() if exc is not None]
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], RollInProgressError)
    assert winners[0] in str(losers[0])
    assert lock.holder("workers") == winners[0]


def test_same_owner_may_acquire_again_and_renews(lock: AsgLock, ddb: Any) -> None:
    lock.acquire("workers", "exec-a", ttl_s=TTL, now=T0)
    lock.acquire("workers", "exec-a", ttl_s=TTL, now=T0 + 100)  # a retried ResolveTarget

    stored = item(ddb, "workers")
    assert stored is not None
    assert stored["owner"]["S"] == "exec-a"
    assert int(stored["expires_at"]["N"]) == int(T0) + 100 + TTL


def test_locks_are_per_group(lock: AsgLock) -> None:
    lock.acquire("workers-a", "exec-a", ttl_s=TTL, now=T0)
    lock.acquire("workers-b", "exec-b", ttl_s=TTL, now=T0)

    assert (lock.holder("workers-a"), lock.holder("workers-b")) == ("exec-a", "exec-b")


def test_live_lock_blocks_until_it_expires_then_can_be_taken_over(lock: AsgLock) -> None:
    lock.acquire("workers", "exec-a", ttl_s=60, now=T0)

    with pytest.raises(RollInProgressError, match="exec-a"):
        lock.acquire("workers", "exec-b", ttl_s=60, now=T0 + 59)

    lock.acquire("workers", "exec-b", ttl_s=60, now=T0 + 60)
    assert lock.holder("workers") == "exec-b"
    assert lock.release("workers", "exec-a") is False  # the crashed run cannot free b's lock
    assert lock.holder("workers") == "exec-b"


def test_release_only_by_owner(lock: AsgLock) -> None:
    lock.acquire("workers", "exec-a", ttl_s=TTL, now=T0)

    assert lock.release("workers", "exec-b") is False
    assert lock.holder("workers") == "exec-a"

    assert lock.release("workers", "exec-a") is True
    assert lock.holder("workers") is None
    assert lock.release("workers", "exec-a") is False  # a retried ReleaseLock


def test_holder_can_ignore_expired_locks(lock: AsgLock) -> None:
    assert lock.holder("workers") is None
    lock.acquire("workers", "exec-a", ttl_s=60, now=T0)

    assert lock.holder("workers", now=T0 + 30) == "exec-a"
    assert lock.holder("workers", now=T0 + 61) is None
    assert lock.holder("workers") == "exec-a"  # the item is still there until TTL removes it


def test_an_operators_control_is_stored_on_the_running_rolls_lock_and_read_by_its_holder(
    lock: AsgLock, ddb: Any
) -> None:
    # Given a roll holding the lock of prod-a
    owner = "arn:aws:states:us-east-1:123456789012:execution:roll:exec-1"
    lock.acquire("prod-a", owner, ttl_s=TTL, now=T0)
    assert lock.hold("prod-a", owner, ttl_s=TTL, now=T0 + 10) is None  # nothing asked yet
    # When an operator pauses it
    assert lock.set_control("prod-a", "pause", by="alice", now=T0 + 20) == owner
    # Then the holder reads the pause and who asked, and its lock is renewed from now
    assert lock.hold("prod-a", owner, ttl_s=TTL, now=T0 + 30) == ("pause", "alice")
    found = item(ddb, "prod-a")
    assert found is not None and found["expires_at"]["N"] == str(int(T0 + 30) + TTL)
    # ... the CLI finds the roll's group by its execution
    assert lock.keys_held_by(owner) == ["prod-a"]
    assert lock.keys_held_by(owner + "-other") == []


def test_a_control_for_a_group_no_roll_holds_is_refused(lock: AsgLock, ddb: Any) -> None:
    from eks_rolling.errors import RollNotFoundError

    with pytest.raises(RollNotFoundError, match="prod-b"):
        lock.set_control("prod-b", "abort", by="alice", now=T0)
    assert item(ddb, "prod-b") is None  # nothing written
    # ... nor for an expired one
    lock.acquire("prod-b", "exec-old", ttl_s=TTL, now=T0)
    with pytest.raises(RollNotFoundError):
        lock.set_control("prod-b", "abort", by="alice", now=T0 + TTL + 1)


def test_a_holder_that_lost_its_lock_learns_it_when_it_checks(lock: AsgLock) -> None:
    from eks_rolling.errors import LockLostError

    lock.acquire("prod-c", "exec-1", ttl_s=TTL, now=T0)
    lock.take_over("prod-c", holder="exec-1", owner="exec-2", ttl_s=TTL, now=T0 + 1)
    with pytest.raises(LockLostError):
        lock.hold("prod-c", "exec-1", ttl_s=TTL, now=T0 + 2)
