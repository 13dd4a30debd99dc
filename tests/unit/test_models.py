"""PollState.begin: the first round of a wait loop starts the clock, later rounds keep it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eks_rolling.models import PollState

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
