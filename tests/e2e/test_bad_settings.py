"""A misspelt setting stops the roll at PlanRoll, through the state machine, before any change."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Field, states_entered

pytestmark = pytest.mark.slow


def test_a_misspelt_setting_fails_the_plan_naming_it_and_changes_nothing(field: Field) -> None:
    # Given an operator who wrote EKS_ROLLING_DRAIN_TIMEOUT for EKS_ROLLING_DRAIN_TIMEOUT_S
    event = field.scenario.bump_launch_template()
    before, ca_before = field.state(), field.autoscaler_replicas()
    mark = field.env.sandbox.request_log.mark()
    with field.runner(drain_timeout="60") as runner:
        result = runner.run(event, timeout=60)
        names = [n for n, _ in states_entered(runner.history(result["executionArn"]))]
    # Then the execution fails with SettingsError naming the variable, before any change
    assert result["status"] == "FAILED" and result["error"] == "SettingsError", result.get("cause")
    assert "EKS_ROLLING_DRAIN_TIMEOUT (did you mean EKS_ROLLING_DRAIN_TIMEOUT_S?)" in result["cause"]
    assert "PauseAutoscaler" not in names
    assert not field.env.sandbox.request_log.writes(mark)
    after = field.state()
    assert (after.desired, after.max_size, after.suspended_processes) == (
        before.desired,
        before.max_size,
        before.suspended_processes,
    )
    assert field.autoscaler_replicas() == ca_before
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0
