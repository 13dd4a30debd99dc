"""Whether the next wave may start: the operator's pause / resume / abort and the maintenance
windows, decided from what CheckGate read (pure: no I/O, time passed in).

Abort wins over pause, pause over a closed window. A wave already running is never stopped
here: the gate sits between waves, so what is in flight finishes first. Each answer carries
what the next check needs (since when paused, when people were last reminded) because the
state machine feeds it back in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..errors import HealthAlarmError, PauseTimeoutError, RollAbortedError
from ..models import Control, GateState
from .windows import WindowState

Notice = Literal["waiting", "paused", "resumed"]


@dataclass(frozen=True)
class GateRules:
    pause_timeout_s: int
    pause_reminder_s: int
    poll_s: int  # longest Wait between two checks, so an abort or a resume is seen in time


def _wait(seconds: float, rules: GateRules) -> int:
    return max(1, min(rules.poll_s, math.ceil(seconds)))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def decide(
    control: Control | None,
    window: WindowState,
    now: datetime,
    prev: GateState | None,
    rules: GateRules,
) -> tuple[GateState, Notice | None]:
    """The gate's answer and the notification to send with it (None: nothing new to say).
    Raises RollAbortedError on abort and PauseTimeoutError past the pause bound."""
    if control is not None and control.action == "abort":
        raise RollAbortedError(f"roll aborted by {control.by}")
    was_paused = prev is not None and prev.reason == "paused"
    if control is not None and control.action == "pause":
        since = (
            datetime.fromisoformat(prev.paused_since) if was_paused and prev and prev.paused_since else now
        )
        paused_s = (now - since).total_seconds()
        if paused_s >= rules.pause_timeout_s:
            raise PauseTimeoutError(
                f"roll paused by {control.by} for {int(paused_s)} s, longer than pause_timeout_s="
                f"{rules.pause_timeout_s}: stopping and rolling back"
            )
        last = prev.reminded_at if was_paused and prev else None
        remind = (
            last is None or (now - datetime.fromisoformat(last)).total_seconds() >= rules.pause_reminder_s
        )
        wait_s = _wait(rules.pause_timeout_s - paused_s, rules)
        state = GateState(
            action="wait",
            reason="paused",
            message=f"paused by {control.by} since {_iso(since)}; fails at {_iso(since + timedelta(seconds=rules.pause_timeout_s))} unless resumed",
            wait_s=wait_s,
            wait_until=_iso(now + timedelta(seconds=wait_s)),
            paused_since=_iso(since),
            paused_by=control.by,
            reminded_at=_iso(now) if remind else last,
        )
        return state, "paused" if remind else None
    if not window.open:
        assert window.until is not None  # a closed window always has a next opening
        wait_s = _wait((window.until - now).total_seconds(), rules)
        state = GateState(
            action="wait",
            reason="window",
            message=f"outside the maintenance windows; the next opens at {_iso(window.until)}",
            wait_s=wait_s,
            wait_until=_iso(now + timedelta(seconds=wait_s)),
            opens_at=_iso(window.until),
        )
        first = prev is None or prev.reason != "window"
        return state, "waiting" if first else None
    if was_paused:
        by = control.by if control is not None else "unknown (the pause was cleared)"
        return GateState(action="go", reason="resumed", message=f"resumed by {by}"), "resumed"
    until = f" (window open until {_iso(window.until)})" if window.until else ""
    return GateState(action="go", reason="open", message=f"go{until}"), None


def bake_rounds(bake_s: int, poll_s: int) -> int:
    """Waits of one wave's bake: the bound the plan budgets for (each wait is at most poll_s and
    ends no later than the bake, so there are never more)."""
    return math.ceil(bake_s / max(poll_s, 1)) if bake_s > 0 else 0


def check_health(firing: Sequence[str], wave: str) -> None:
    """An alarm in ALARM stops the roll: HealthAlarmError names every firing alarm."""
    if firing:
        raise HealthAlarmError(f"health alarm(s) in ALARM at the gate of wave {wave}: {'; '.join(firing)}")


def bake(
    firing: Sequence[str],
    wave: str,
    now: datetime,
    prev: GateState | None,
    bake_s: int,
    poll_s: int,
    control: Control | None = None,
) -> GateState:
    """After a wave: go once the alarms stayed OK (not ALARM) through Waits adding up to `bake_s`,
    else wait at most `poll_s` and never past the bake (an adaptive, bounded wait: exactly
    bake_rounds Waits). Raises HealthAlarmError as soon as one is in ALARM.

    The bake is counted in the state machine's own Waits, not from the clock: on AWS a Wait takes
    its seconds (so the real bake is at least bake_s), and wherever Waits are scaled (the sandbox)
    the bake is scaled with them, so its rounds are the real ones. An abort is not kept waiting
    for the bake (RollAbortedError); a pause acts at the next wave's gate."""
    check_health(firing, wave)
    if control is not None and control.action == "abort":
        raise RollAbortedError(f"roll aborted by {control.by} while wave {wave} baked")
    baking = prev is not None and prev.reason == "baking"
    since = datetime.fromisoformat(prev.bake_since) if baking and prev and prev.bake_since else now
    baked = prev.baked_s + prev.wait_s if baking and prev else 0
    left = bake_s - baked
    if left <= 0:
        return GateState(
            action="go",
            reason="healthy",
            message=f"wave {wave} baked: health alarms OK for {baked} s since {_iso(since)}",
            bake_since=_iso(since),
            baked_s=baked,
        )
    wait_s = max(1, min(poll_s, left))
    return GateState(
        action="wait",
        reason="baking",
        message=f"wave {wave} baking: health alarms OK since {_iso(since)}; {left} s to go",
        wait_s=wait_s,
        wait_until=_iso(now + timedelta(seconds=wait_s)),
        bake_since=_iso(since),
        baked_s=baked,
    )
