"""Maintenance windows: when a roll may start a new wave. Pure: text in, times out.

One syntax for the setting and the ASG tag: windows separated by `;`, each
`DAYS HH:MM/DURATION TIME_ZONE`, e.g. `Mon-Fri 22:00/4h Europe/Berlin; Sat,Sun 00:00/24h UTC`.
DAYS is `*` (every day) or a comma list of days (`Mon`..`Sun`) and ranges (`Fri-Mon` wraps);
DURATION is `90m`, `4h` or `1h30m` (at most 7 days); TIME_ZONE is an IANA name. A window
belongs to the day it starts on, so `Fri 22:00/4h` ends Saturday 02:00. Local times follow the
zone's DST rules (zoneinfo), so `22:00` stays 22:00 on the wall clock all year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DURATION = timedelta(days=7)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")


class WindowError(ValueError):
    """A window that does not parse; the message names the bad part."""


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: time
    duration: timedelta
    zone: str

    def occurrences(self, now: datetime) -> list[tuple[datetime, datetime]]:
        """(start, end) of this window's occurrences from 8 days before to 8 days after `now`."""
        tz = ZoneInfo(self.zone)
        today = now.astimezone(tz).date()
        out = []
        for offset in range(-8, 9):
            day = today + timedelta(days=offset)
            if day.weekday() in self.days:
                start = datetime.combine(day, self.start, tzinfo=tz)
                out.append((start, start + self.duration))
        return out


@dataclass(frozen=True)
class WindowState:
    open: bool
    until: datetime | None  # open: when the current window closes; closed: when the next opens


def _days(text: str) -> frozenset[int]:
    if text == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise WindowError(f"day {part!r} is not Mon..Sun, a range like Mon-Fri, or *")
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def _duration(text: str) -> timedelta:
    m = _DURATION.match(text)
    if not text or not m or not any(m.groups()):
        raise WindowError(f"duration {text!r} is not like 90m, 4h or 1h30m")
    d = timedelta(hours=int(m.group(1) or 0), minutes=int(m.group(2) or 0))
    if not timedelta(0) < d <= MAX_DURATION:
        raise WindowError(f"duration {text!r} must be more than 0 and at most 7 days")
    return d


def parse_window(text: str) -> Window:
    parts = text.split()
    if len(parts) != 3 or "/" not in parts[1]:
        raise WindowError(f"window {text!r} is not 'DAYS HH:MM/DURATION TIME_ZONE'")
    days, span, zone = parts
    start_text, _, duration = span.partition("/")
    m = _TIME.match(start_text)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise WindowError(f"start {start_text!r} is not a time HH:MM")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"time zone {zone!r} is not an IANA name like UTC or Europe/Berlin") from None
    return Window(_days(days), time(int(m.group(1)), int(m.group(2))), _duration(duration), zone)


def parse_windows(text: str) -> tuple[Window, ...]:
    """All windows of a setting or tag; empty text: no windows (a roll may run at any time)."""
    return tuple(parse_window(part.strip()) for part in text.split(";") if part.strip())


def window_state(windows: tuple[Window, ...], now: datetime) -> WindowState:
    """Whether `now` is inside a window (and until when), or when the next one opens.
    No windows: always open."""
    if not windows:
        return WindowState(True, None)
    spans = [o for w in windows for o in w.occurrences(now)]
    current = [end for start, end in spans if start <= now < end]
    if current:
        return WindowState(True, max(current))
    return WindowState(False, min(start for start, _ in spans if start > now))
