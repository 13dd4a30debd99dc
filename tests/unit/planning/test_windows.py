"""Maintenance windows: the one syntax, its errors, and when a window is open or opens next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eks_rolling.planning.windows import WindowError, parse_window, parse_windows, window_state


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_window_parses_days_start_duration_and_zone() -> None:
    w = parse_window("Mon-Fri 22:00/1h30m Europe/Berlin")
    assert w.days == frozenset({0, 1, 2, 3, 4})
    assert (w.start.hour, w.start.minute) == (22, 0)
    assert w.duration == timedelta(hours=1, minutes=30)
    assert w.zone == "Europe/Berlin"


def test_day_ranges_wrap_and_lists_combine() -> None:
    assert parse_window("Fri-Mon 00:00/1h UTC").days == frozenset({4, 5, 6, 0})
    assert parse_window("sat,Sun,wed 00:00/1h UTC").days == frozenset({5, 6, 2})
    assert parse_window("* 00:00/1h UTC").days == frozenset(range(7))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Mon-Fri 22:00 UTC", "DAYS HH:MM/DURATION"),
        ("Mon-Fry 22:00/4h UTC", "'mon-fry'"),
        ("Mon 24:00/4h UTC", "start '24:00'"),
        ("Mon 22:60/4h UTC", "start '22:60'"),
        ("Mon 22:00/4 UTC", "duration '4'"),
        ("Mon 22:00/0m UTC", "more than 0"),
        ("Mon 22:00/200h UTC", "at most 7 days"),
        ("Mon 22:00/4h Mars/Olympus", "time zone 'Mars/Olympus'"),
        ("Mon 22:00/4h", "DAYS HH:MM/DURATION"),
    ],
)
def test_a_bad_window_names_its_bad_part(text: str, names: str) -> None:
    with pytest.raises(WindowError, match=names.replace("(", r"\(")):
        parse_windows(f"* 01:00/1h UTC; {text}")


def test_no_windows_means_always_open() -> None:
    assert parse_windows("  ") == ()
    assert window_state((), at("2026-12-07T03:00:00+00:00")).open


def test_inside_a_window_it_is_open_until_its_end() -> None:
    windows = parse_windows("Mon 02:00/2h UTC")
    state = window_state(windows, at("2026-12-07T03:00:00+00:00"))  # a Monday
    assert state.open and state.until == at("2026-12-07T04:00:00+00:00")


def test_outside_it_waits_for_the_next_opening_even_next_week() -> None:
    windows = parse_windows("Mon 02:00/2h UTC")
    state = window_state(windows, at("2026-12-07T04:00:00+00:00"))  # the end is not inside
    assert not state.open and state.until == at("2026-12-14T02:00:00+00:00")


def test_a_window_belongs_to_the_day_it_starts_on() -> None:
    # Sunday 22:00 for 4 h is still open on Monday at 01:00
    windows = parse_windows("Sun 22:00/4h UTC")
    assert window_state(windows, at("2026-12-07T01:00:00+00:00")).open


def test_local_time_follows_the_zone_and_its_dst() -> None:
    windows = parse_windows("* 22:00/1h Europe/Berlin")
    winter = window_state(windows, at("2026-12-07T12:00:00+00:00"))
    summer = window_state(windows, at("2026-07-07T12:00:00+00:00"))
    assert winter.until == at("2026-12-07T21:00:00+00:00")  # CET = UTC+1
    assert summer.until == at("2026-07-07T20:00:00+00:00")  # CEST = UTC+2


def test_the_earliest_of_several_windows_opens_first() -> None:
    windows = parse_windows("Tue 05:00/1h UTC; Mon 20:00/30m America/New_York")
    state = window_state(windows, at("2026-12-07T12:00:00+00:00"))  # Monday noon UTC
    assert state.until == at("2026-12-08T01:00:00+00:00")  # Mon 20:00 EST
