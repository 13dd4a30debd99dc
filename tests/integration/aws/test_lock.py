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
