"""Faults around the Sentinel switchover, with real processes and writes in flight: the tool
stops with a named error, never fails over into a replica that is not in sync, never leaves two
masters or a paused master, and loses no acknowledged write."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from eks_rolling.errors import RedisGroupUnhealthyError, RedisMoveTimeoutError, RedisSwitchoverError
from eks_rolling.labels import REDIS_PORT
from eks_rolling.redis.sentinel import DataNode, SentinelNode
from eks_rolling.services.redis.sentinel import PRIORITY_ANNOTATION
from tests.factories.fault_matrix import FaultRow
from tests.factories.redis_sentinel import MASTER, SENTINELS, SentinelField, requires, wait_for

pytestmark = [*requires, pytest.mark.slow]


def _to_the_switchover(sentinel: SentinelField) -> tuple[Any, Any, str, dict[str, Any]]:
    """Retire the master's node and run MoveRedisPods until the master's move is about to switch
    over (target steered). Returns (node, output, target, sentinel-0's view of the master)."""
    node = sentinel.retire(MASTER)
    out, _ = sentinel.drive(node, until_phase="switchover", timeout=90)
    move = next(m for m in out.moves if m.pod == MASTER)
    return node, out, str(move.data["target"]), sentinel.sentinel_master(SENTINELS[0])


def _assert_untouched(sentinel: SentinelField, uid: str, epoch: str) -> None:
    """The master never moved: same pod, still master, named by every sentinel, no new epoch."""
    assert sentinel.pod(MASTER)["metadata"]["uid"] == uid
    assert sentinel.role(MASTER) == "master"
    for s in SENTINELS:
        state = sentinel.sentinel_master(s)
        assert state["ip"] == sentinel.ip(MASTER) and state["config-epoch"] == epoch, (s, state)


def _assert_priority_restored(sentinel: SentinelField, target: str, said: list[str]) -> None:
    assert f"replica-priority of {target} restored to 100" in "\n".join(said), said
    assert sentinel.priority(target) == 100
    assert PRIORITY_ANNOTATION not in (sentinel.pod(target)["metadata"].get("annotations") or {})


@pytest.mark.fault("F6")
def test_a_target_that_stops_syncing_means_no_failover_and_a_clear_failure(
    sentinel: SentinelField, fault_row: FaultRow
) -> None:
    sentinel.settings["redis_phase_timeout_s"] = "15"
    uid = sentinel.pod(MASTER)["metadata"]["uid"]
    writer = sentinel.writer()
    node, out, target, state = _to_the_switchover(sentinel)

    # Given the steered target loses its replication link (wrong masterauth) and never resyncs
    with sentinel.client(target) as r:
        r.config_set("masterauth", "wrong")
        r.execute_command("CLIENT", "KILL", "TYPE", "master")

    # When the switchover phase runs on
    with pytest.raises(RedisMoveTimeoutError) as err:
        sentinel.drive(node, out=out, timeout=60)

    # Then it stops with a named error naming the pod, the phase and the target's state
    assert "redis/redis-master-0: phase switchover timed out" in str(err.value)
    assert target in str(err.value) and "link down" in str(err.value)
    # ... no failover was attempted: the master is untouched and writes never paused
    _assert_untouched(sentinel, uid, state["config-epoch"])
    # ... and Rollback's cleanup puts the target's priority back
    notes = sentinel.cleanup()
    _assert_priority_restored(sentinel, target, notes)
    with sentinel.client(target) as r:
        r.config_set("masterauth", sentinel.password)
    report = writer.stop()
    _record(fault_row, "the failover target's replication link cut for good", err.value, report)
    assert report.lost == 0 and report.max_gap_ms < 1000, report


def _record(row: FaultRow, injected: str, error: BaseException, report: Any) -> None:
    """The fault matrix's numbers: a service-level run of MoveRedisPods with writes in flight."""
    row.injected, row.outcome, row.error = injected, "stopped with a named error", type(error).__name__
    row.restored, row.lost_writes = True, report.lost
    row.numbers.update(acked_writes=report.acked, max_write_gap_ms=round(report.max_gap_ms))


@pytest.mark.fault("F7")
def test_an_unreachable_sentinel_aborts_before_the_switchover(
    sentinel: SentinelField, fault_row: FaultRow
) -> None:
    uid = sentinel.pod(MASTER)["metadata"]["uid"]
    writer = sentinel.writer()
    node, out, target, state = _to_the_switchover(sentinel)

    # Given a sentinel stops answering (its process frozen: the port is open, no reply comes)
    frozen = SENTINELS[2]
    sentinel.freeze(frozen)
    try:
        # When the switchover phase runs
        with pytest.raises(RedisGroupUnhealthyError) as err:
            sentinel.drive(node, out=out, timeout=30)
    finally:
        sentinel.freeze(frozen, frozen=False)

    # Then it aborted before pausing writes, naming the sentinel: by pod name when its pod was
    # already seen down, by address when it stopped answering mid-check (which one: machine load)
    msg = str(err.value)
    assert (sentinel.ip(frozen) in msg or f"'{frozen}'" in msg) and "aborted before pausing writes" in msg
    _assert_untouched(sentinel, uid, state["config-epoch"])
    _assert_priority_restored(sentinel, target, sentinel.cleanup())
    report = writer.stop()
    _record(fault_row, "a sentinel process frozen (SIGSTOP) before the switchover", err.value, report)
    assert report.lost == 0 and report.max_gap_ms < 1000, report


def _fail_once(real: Any) -> Any:
    calls = {"n": 0}

    def wrapper(self: Any, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise redis.ConnectionError("injected: the step died here")
        return real(self, *args)

    return wrapper


@pytest.mark.fault("F8")
@pytest.mark.parametrize(
    ("where", "cls", "method"),
    [
        ("before SENTINEL FAILOVER", SentinelNode, "failover"),
        ("after the promotion, before releasing the old master", DataNode, "demote_and_unpause"),
    ],
)
def test_a_switchover_that_dies_after_the_pause_releases_writes_and_loses_none(
    sentinel: SentinelField,
    monkeypatch: pytest.MonkeyPatch,
    fault_row: FaultRow,
    where: str,
    cls: type,
    method: str,
) -> None:
    pause_ms = 5000
    sentinel.settings["redis_pause_ms"] = str(pause_ms)
    writer = sentinel.writer()
    node, out, target, _ = _to_the_switchover(sentinel)

    # Given one Redis call inside the switchover fails once, after CLIENT PAUSE
    monkeypatch.setattr(cls, method, _fail_once(getattr(cls, method)))

    # When the switchover phase runs
    t0 = time.monotonic()
    with pytest.raises(RedisSwitchoverError) as err:
        sentinel.drive(node, out=out, timeout=60)
    monkeypatch.undo()

    # Then it stops with a named error saying where the master is and that writes were released
    assert "injected: the step died here" in str(err.value) and "writes released" in str(err.value)
    promoted = method == "demote_and_unpause"
    expected = target if promoted else MASTER
    assert (f"{sentinel.ip(target)} was promoted" in str(err.value)) is promoted, (where, err.value)
    # ... exactly one master, named by every sentinel
    masters = [p for p in (MASTER, target) if sentinel.role(p) == "master"]
    assert masters == [expected], (where, masters)
    wait_for(
        lambda: {sentinel.sentinel_master(s)["ip"] for s in SENTINELS} == {sentinel.ip(expected)},
        10,
        "every sentinel to name the master",
    )

    # And a step that died with the pause in force and nobody left to lift it: Rollback's cleanup
    # lifts it (else it would lapse on its own after its budget)
    time.sleep(1.0)
    t_pause = time.monotonic()
    with redis.Redis(
        sentinel.ip(expected), REDIS_PORT, password=sentinel.password, decode_responses=True
    ) as c:
        DataNode(c, (sentinel.ip(expected), REDIS_PORT)).pause_writes(30_000)
    time.sleep(1.0)
    notes = sentinel.cleanup()
    t_cleaned = time.monotonic()
    time.sleep(1.5)
    report = writer.stop()
    assert "CLIENT UNPAUSE on 3 data pods" in "\n".join(notes), notes
    # ... the failed switchover had already put the target's priority back
    _assert_priority_restored(sentinel, target, [str(err.value)])

    # Then no acknowledged write was lost; the failed switchover held writes well within its
    # pause budget; the stranded pause ended with cleanup, not 30 s later; writes went on after
    _record(fault_row, f"the switchover step dies {where}, after CLIENT PAUSE", err.value, report)
    fault_row.numbers[f"stranded_pause_lifted_after_s ({method})"] = round(t_cleaned - t_pause, 1)
    assert report.lost == 0, report
    during = [g for g in report.gaps if t0 - 1 <= g.started_at < t_pause]
    assert all(g.length_ms < pause_ms for g in during), during
    stalled = [g for g in report.gaps if t_pause - 0.5 <= g.started_at <= t_pause + 0.5]
    assert len(stalled) == 1 and stalled[0].started_at + stalled[0].length_ms / 1000 < t_cleaned + 1.0, (
        stalled
    )
    assert not report.gaps[-1].open_ended, report.gaps[-1]
