"""Counting a roll from its history: state transitions are StateEntered events, and the phase
split follows one batch from its surge to its last node's termination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eks_rolling_sandbox.roll_counts import count_roll, phase_seconds

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def _ev(kind: str, name: str, at_s: float) -> dict[str, Any]:
    key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
    return {"type": kind, key: {"name": name}, "timestamp": T0 + timedelta(seconds=at_s)}


def _batch(start: float, boot: float, drain: float, dereg: float) -> list[dict[str, Any]]:
    return [
        _ev("TaskStateEntered", "SurgeCapacity", start),
        _ev("TaskStateExited", "SurgeCapacity", start + 1),
        _ev("MapStateEntered", "ReplaceNodes", start + boot),
        _ev("TaskStateEntered", "DrainNode", start + boot + 1),
        _ev("TaskStateEntered", "ExcludeFromLoadBalancers", start + boot + drain / 2),
        _ev("TaskStateEntered", "ExcludeFromLoadBalancers", start + boot + drain),
        _ev("TaskStateEntered", "TerminateInstance", start + boot + drain + dereg - 1),
        _ev("MapStateExited", "ReplaceNodes", start + boot + drain + dereg),
    ]


def test_phases_add_up_per_batch_and_transitions_count_states_entered() -> None:
    history = _batch(0, 90, 40, 31) + _batch(200, 100, 20, 32)
    assert phase_seconds(history) == {"boot": 190.0, "drain": 60.0, "deregister": 63.0}
    counts = count_roll(history)
    assert counts.state_transitions == 12 and counts.nodes == 2 and counts.batches == 2
    # Control: a batch whose nodes never reach ExcludeFromLoadBalancers has no deregistration phase.
    stuck = [e for e in _batch(0, 90, 40, 31) if "ExcludeFromLoadBalancers" not in str(e)]
    assert phase_seconds(stuck) == {"boot": 90.0, "drain": 71.0, "deregister": 0.0}
