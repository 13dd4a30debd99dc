"""The health gate's service against moto: missing alarms stop PlanRoll's check by name, and an
alarm in ALARM is HealthAlarmError at the gate (before a wave and while a wave bakes)."""

from __future__ import annotations

from typing import Any

import pytest

from eks_rolling.aws.clients import aws_client
from eks_rolling.errors import HealthAlarmError, InvalidInputError, SettingsError
from eks_rolling.labels import TAG_HEALTH_ALARMS
from eks_rolling.planning.gate import bake
from eks_rolling.services.deps import Deps
from eks_rolling.services.gate import check_alarms_exist, firing_alarms
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.alarms import create_alarm
from eks_rolling_sandbox.cloud.moto_server import MotoServer


@pytest.fixture
def cw_deps(moto: MotoServer) -> tuple[Any, Deps]:
    settings = Settings(region="us-east-1", aws_endpoint_url=moto.endpoint_url, health_alarms="shop-5xx")
    cw = aws_client("cloudwatch", settings)
    create_alarm(cw, "shop-5xx", reason="fine")
    return cw, Deps(settings)


def test_a_missing_alarm_is_a_settings_error_naming_it_or_an_input_error_for_the_tag(
    cw_deps: tuple[Any, Deps],
) -> None:
    _, deps = cw_deps
    assert check_alarms_exist(deps.settings, {}, deps) == ["shop-5xx"]
    typo = Settings(**{**deps.settings.model_dump(), "health_alarms": "shop-5xx, shop-5xxx"})
    with pytest.raises(SettingsError, match="no CloudWatch alarm named 'shop-5xxx'"):
        check_alarms_exist(typo, {}, deps)
    with pytest.raises(InvalidInputError, match=f"tag {TAG_HEALTH_ALARMS}.*'nope'"):
        check_alarms_exist(deps.settings, {TAG_HEALTH_ALARMS: "nope"}, deps)


def test_an_alarm_in_alarm_stops_the_bake_with_its_reason(cw_deps: tuple[Any, Deps]) -> None:
    cw, deps = cw_deps
    assert firing_alarms(["shop-5xx"], deps) == []
    cw.set_alarm_state(AlarmName="shop-5xx", StateValue="ALARM", StateReason="pods failing on ami-bad")
    firing = firing_alarms(["shop-5xx", "gone"], deps)
    assert firing == ["shop-5xx: pods failing on ami-bad", "gone: the alarm no longer exists"]
    with pytest.raises(HealthAlarmError, match="shop-5xx: pods failing on ami-bad"):
        bake(firing, "w01", deps.now(), None, 300, 60)
