"""PollState.begin: the first round of a wait loop starts the clock, later rounds keep it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eks_rolling.models import STATE_LIST_MAX, PollState

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_first_round_starts_the_clock() -> None:
    assert PollState.begin(None, T0, 300) == (T0, T0 + timedelta(seconds=300), 1)


def test_later_rounds_keep_the_start_and_deadline_and_count_attempts() -> None:
    # Given a loop that started 10 minutes ago with a 5-minute deadline
    prev = PollState(started_at=T0, deadline=T0 + timedelta(seconds=300), attempt=4)
    # When another round begins with a different timeout
    started, deadline, attempt = PollState.begin(prev, T0 + timedelta(minutes=10), 900)
    # Then the deadline is still the first one: a retry never extends it
    assert (started, deadline, attempt) == (T0, T0 + timedelta(seconds=300), 5)


FAR = datetime(2027, 1, 1, tzinfo=UTC)


def _rounds_to_wait(seconds: int, base_s: int, cap_s: int) -> int:
    """Checks a loop makes while nothing changes for `seconds` (what a node's boot looks like)."""
    prev: PollState | None = None
    waited, rounds = 0, 0
    t0 = datetime(2026, 12, 7, tzinfo=UTC)
    while waited < seconds:
        idle, wait = PollState.pace(prev, ["i-1 is Pending"], base_s, cap_s, now=t0, deadline=FAR)
        prev = PollState(started_at=t0, deadline=t0, idle=idle, next_wait_s=wait, detail=["i-1 is Pending"])
        waited += wait
        rounds += 1
    return rounds


def test_adaptive_polling_doubles_while_nothing_changes_and_restarts_on_progress() -> None:
    t0 = datetime(2026, 12, 7, tzinfo=UTC)
    waits, prev = [], None
    for detail in (["a", "b"], ["a", "b"], ["a", "b"], ["a", "b"], ["a", "b"], ["b"], ["b"]):
        idle, wait = PollState.pace(prev, detail, 10, 60, now=t0, deadline=FAR)
        prev = PollState(started_at=t0, deadline=t0, idle=idle, next_wait_s=wait, detail=detail)
        waits.append(wait)
    assert waits == [10, 20, 40, 60, 60, 10, 20]
    # A cap below the base polls at the base: never faster than poll_interval_s.
    assert PollState.pace(prev, ["b"], 10, 5, now=t0, deadline=FAR) == (2, 10)
    # Never past the deadline by more than a second: a stuck loop fails on time.
    assert PollState.pace(prev, ["b"], 10, 60, now=t0, deadline=t0 + timedelta(seconds=7)) == (2, 8)
    assert PollState.pace(prev, ["b"], 10, 60, now=FAR, deadline=t0)[1] == 40


def test_a_long_detail_is_bounded_and_still_shows_progress_beyond_its_first_lines() -> None:
    t0 = datetime(2026, 12, 7, tzinfo=UTC)
    pending = [f"i-{k} has not registered as a node" for k in range(1000)]
    # Given a round whose detail names 1,000 pending instances: the state keeps 20 and a count
    prev = PollState(started_at=t0, deadline=t0, detail=pending)
    assert len(prev.detail) == STATE_LIST_MAX + 1 and prev.detail[-1] == "... and 980 more"
    # Then the same 1,000 again count as no change (the wait grows) ...
    assert PollState.pace(prev, pending, 10, 60, now=t0, deadline=FAR) == (1, 20)
    # ... and one of the last 980 done is progress (the wait restarts)
    assert PollState.pace(prev, pending[:-1], 10, 60, now=t0, deadline=FAR) == (0, 10)


def test_a_90_s_boot_costs_4_checks_adaptive_and_9_at_the_old_fixed_interval() -> None:
    assert _rounds_to_wait(90, 10, 60) == 4  # 10 + 20 + 40 + 60
    # Control: a cap equal to the poll interval is the old fixed polling.
    assert _rounds_to_wait(90, 10, 10) == 9
