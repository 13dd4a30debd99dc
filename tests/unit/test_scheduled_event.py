"""The drift check's trigger: EventBridge's Scheduled Event, parsed like any other trigger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eks_rolling.aws.events import TriggerRequest, parse_trigger
from eks_rolling.errors import InvalidInputError

pytestmark = pytest.mark.unit

EVENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "events" / "scheduled.json").read_text()
)


def test_a_scheduled_event_is_a_drift_check() -> None:
    assert parse_trigger(EVENT) == TriggerRequest(kind="scheduled", event_id=EVENT["id"])


@pytest.mark.parametrize(
    ("change", "match"),
    [({"source": "aws.autoscaling"}, "source"), ({"id": ""}, "id"), ({"version": None}, "version")],
    ids=["foreign-source", "empty-id", "no-version"],
)
def test_a_malformed_scheduled_event_is_invalid_input(change: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_trigger({**EVENT, **change})
