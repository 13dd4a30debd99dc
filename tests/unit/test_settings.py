"""Settings errors are named at plan time: a misspelt EKS_ROLLING_* variable or a value of the
wrong type, never silently ignored and never pydantic's ValidationError mid-roll."""

from __future__ import annotations

import pytest

from eks_rolling.errors import SettingsError
from eks_rolling.services.deps import Deps
from eks_rolling.settings import STATE_MACHINE_ARN_VARIABLE, check_environment, known_variables, load_settings


def test_a_misspelt_variable_is_named_with_the_closest_real_one() -> None:
    env = {"EKS_ROLLING_BATCH_SIZE": "2", "EKS_ROLLING_DRAIN_TIMEOUT": "60", "PATH": "/bin"}
    with pytest.raises(SettingsError) as caught:
        check_environment(env)
    assert str(caught.value) == (
        "unknown eks-rolling setting(s): EKS_ROLLING_DRAIN_TIMEOUT (did you mean EKS_ROLLING_DRAIN_TIMEOUT_S?)"
    )


def test_real_settings_and_the_sandboxs_own_variables_pass() -> None:
    env = {k: "1" for k in known_variables()} | {"EKS_ROLLING_SANDBOX_FIRST_NODE_INDEX": "7", "OTHER": "x"}
    check_environment(env)


def test_the_commands_state_machine_passes() -> None:
    # A running sandbox's env file sets it for `eks-rolling start|status`; `plan` must still run.
    check_environment({STATE_MACHINE_ARN_VARIABLE: "arn:aws:states:us-east-1:123456789012:stateMachine:x"})


def test_a_value_of_the_wrong_type_is_a_settings_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EKS_ROLLING_BATCH_SIZE", "two")
    with pytest.raises(SettingsError, match="EKS_ROLLING_BATCH_SIZE: Input should be a valid integer"):
        Deps.from_env()


def test_a_bad_scope_selector_is_a_settings_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKS_ROLLING_NODE_SELECTOR", "role in (worker")
    with pytest.raises(SettingsError, match=r"EKS_ROLLING_NODE_SELECTOR: .*unbalanced"):
        load_settings()


def test_a_bad_maintenance_window_is_a_settings_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKS_ROLLING_MAINTENANCE_WINDOWS", "Mon-Fri 22:00/4h UTC; Sat 25:00/1h UTC")
    with pytest.raises(SettingsError, match=r"EKS_ROLLING_MAINTENANCE_WINDOWS: .*start '25:00'"):
        load_settings()


def test_a_pause_bound_past_the_executions_24_hours_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKS_ROLLING_PAUSE_TIMEOUT_S", str(24 * 3600))
    with pytest.raises(SettingsError, match="EKS_ROLLING_PAUSE_TIMEOUT_S"):
        load_settings()
