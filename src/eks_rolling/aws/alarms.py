"""The health gate's CloudWatch alarms: their states, by name (DescribeAlarms, 100 names a call)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eks_rolling.aws.clients import aws_errors

# DescribeAlarms takes at most 100 AlarmNames per call.
_PAGE = 100


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str = ""


class Alarms:
    def __init__(self, cloudwatch: Any) -> None:
        self._cw = cloudwatch

    def states(self, names: Sequence[str]) -> dict[str, AlarmState]:
        """Metric and composite alarms among `names`; a name with no alarm is absent."""
        out: dict[str, AlarmState] = {}
        for i in range(0, len(names), _PAGE):
            with aws_errors():
                pages = self._cw.get_paginator("describe_alarms").paginate(
                    AlarmNames=list(names[i : i + _PAGE]), AlarmTypes=["MetricAlarm", "CompositeAlarm"]
                )
                for page in pages:
                    for a in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                        out[a["AlarmName"]] = AlarmState(
                            a["AlarmName"], a["StateValue"], a.get("StateReason", "")
                        )
        return out
