"""CheckGate's decision: abort > pause > closed window > go; a pause is bounded and reminded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eks_rolling.errors import PauseTimeoutError, RollAbortedError
from eks_rolling.models import Control
from eks_rolling.planning.gate import GateRules, decide
from eks_rolling.planning.windows import WindowState

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
RULES = GateRules(pause_timeout_s=3600, pause_reminder_s=900, poll_s=300)
OPEN = WindowState(True, None)
PAUSE = Control(action="pause", by="alice")


def test_no_control_and_an_open_window_go_without_notice() -> None:
    state, notice = decide(None, OPEN, NOW, None, RULES)
    assert (state.action, state.reason, notice) == ("go", "open", None)


def test_abort_fails_naming_who_even_while_paused_or_outside_a_window() -> None:
    paused, _ = decide(PAUSE, OPEN, NOW, None, RULES)
    with pytest.raises(RollAbortedError, match="bob"):
        decide(
            Control(action="abort", by="bob"),
            WindowState(False, NOW + timedelta(hours=1)),
            NOW,
            paused,
            RULES,
        )


def test_a_closed_window_waits_until_it_opens_polling_at_most_poll_s() -> None:
    opens = NOW + timedelta(seconds=70)
    state, notice = decide(None, WindowState(False, opens), NOW, None, RULES)
    assert (state.action, state.reason, state.wait_s, notice) == ("wait", "window", 70, "waiting")
    assert state.opens_at == opens.isoformat()
    far = decide(None, WindowState(False, NOW + timedelta(hours=5)), NOW, None, RULES)[0]
    assert far.wait_s == RULES.poll_s
    # the next check says nothing new
    assert decide(None, WindowState(False, opens), NOW + timedelta(seconds=30), state, RULES)[1] is None


def test_a_pause_waits_reminds_and_records_who_and_since_when() -> None:
    first, notice = decide(PAUSE, OPEN, NOW, None, RULES)
    assert (first.action, first.reason, first.paused_by, notice) == ("wait", "paused", "alice", "paused")
    later = NOW + timedelta(seconds=300)
    second, notice = decide(PAUSE, OPEN, later, first, RULES)
    assert notice is None and second.paused_since == first.paused_since
    reminder = decide(PAUSE, OPEN, NOW + timedelta(seconds=900), second, RULES)[1]
    assert reminder == "paused"


def test_a_pause_past_its_bound_fails_with_a_named_error() -> None:
    first, _ = decide(PAUSE, OPEN, NOW, None, RULES)
    near = decide(PAUSE, OPEN, NOW + timedelta(seconds=3500), first, RULES)[0]
    assert near.wait_s == 100  # never sleeps past the bound
    with pytest.raises(PauseTimeoutError, match="alice"):
        decide(PAUSE, OPEN, NOW + timedelta(seconds=3600), near, RULES)


def test_resume_goes_on_and_says_who_resumed() -> None:
    paused, _ = decide(PAUSE, OPEN, NOW, None, RULES)
    state, notice = decide(Control(action="resume", by="carol"), OPEN, NOW, paused, RULES)
    assert (state.action, state.reason, notice) == ("go", "resumed", "resumed")
    assert "carol" in state.message
    # a resume with nothing paused is a plain go
    assert decide(Control(action="resume", by="carol"), OPEN, NOW, None, RULES)[0].reason == "open"


def test_a_resumed_roll_outside_its_window_waits_for_it() -> None:
    paused, _ = decide(PAUSE, OPEN, NOW, None, RULES)
    state, notice = decide(None, WindowState(False, NOW + timedelta(seconds=60)), NOW, paused, RULES)
    assert (state.reason, notice) == ("window", "waiting")
