"""CloudWatch alarms in the sandbox's moto: moto evaluates no metrics, so an alarm's state is
whatever `set_alarm_state` last said (the bad-ami scenario's watcher, or a test)."""

from __future__ import annotations

from typing import Any


def create_alarm(cw: Any, name: str, *, state: str = "OK", reason: str = "", namespace: str = "Shop") -> None:
    """A metric alarm (Sum of 5xx-like errors >= 1 over 60 s) put into `state`."""
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace=namespace,
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason or state.lower())
