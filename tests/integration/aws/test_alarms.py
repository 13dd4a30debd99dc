"""Alarms (the health gate's CloudWatch reads) against moto over HTTP."""

from __future__ import annotations

from eks_rolling.aws.alarms import Alarms
from eks_rolling.aws.clients import aws_client
from eks_rolling.settings import Settings


def test_states_by_name_with_missing_names_absent(settings: Settings) -> None:
    cw = aws_client("cloudwatch", settings)
    for name in ("shop-5xx", "checkout-latency"):
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace="Shop",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    cw.set_alarm_state(AlarmName="shop-5xx", StateValue="ALARM", StateReason="pods failing")
    cw.set_alarm_state(AlarmName="checkout-latency", StateValue="OK", StateReason="fine")

    states = Alarms(cw).states(["shop-5xx", "checkout-latency", "typo"])

    assert {n: (a.state, a.reason) for n, a in states.items()} == {
        "shop-5xx": ("ALARM", "pods failing"),
        "checkout-latency": ("OK", "fine"),
    }
