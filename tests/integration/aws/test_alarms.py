"""Alarms (the health gate's CloudWatch reads) against moto over HTTP."""

from __future__ import annotations

from eks_rolling.aws.alarms import Alarms
from eks_rolling.aws.clients import aws_client
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.alarms import create_alarm


def test_states_by_name_with_missing_names_absent(settings: Settings) -> None:
    cw = aws_client("cloudwatch", settings)
    create_alarm(cw, "shop-5xx", state="ALARM", reason="pods failing")
    create_alarm(cw, "checkout-latency", reason="fine")

    states = Alarms(cw).states(["shop-5xx", "checkout-latency", "typo"])

    assert {n: (a.state, a.reason) for n, a in states.items()} == {
        "shop-5xx": ("ALARM", "pods failing"),
        "checkout-latency": ("OK", "fine"),
    }
