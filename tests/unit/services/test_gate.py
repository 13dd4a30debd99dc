"""Where CheckGate's inputs come from: the windows (tag over setting) and the control (the lock
item's and the tag's, the stronger wins), with clear errors on bad values."""

from __future__ import annotations

import pytest

from eks_rolling.errors import InvalidInputError, SettingsError
from eks_rolling.labels import TAG_CONTROL, TAG_HEALTH_ALARMS, TAG_MAINTENANCE_WINDOWS
from eks_rolling.services.gate import alarms_for, control_of, windows_for
from eks_rolling.settings import Settings

SETTING = "Sat 00:00/24h UTC"


def test_the_tag_wins_over_the_setting_and_says_where_it_came_from() -> None:
    s = Settings(maintenance_windows=SETTING)
    windows, text, source = windows_for(s, {TAG_MAINTENANCE_WINDOWS: "Mon-Fri 22:00/4h Europe/Berlin"})
    assert (len(windows), text, source) == (
        1,
        "Mon-Fri 22:00/4h Europe/Berlin",
        f"tag {TAG_MAINTENANCE_WINDOWS}",
    )
    assert windows_for(s, {})[1:] == (SETTING, "setting maintenance_windows")
    assert windows_for(Settings(), {}) == ((), "", "")


def test_a_bad_tag_is_invalid_input_and_a_bad_setting_a_settings_error() -> None:
    with pytest.raises(InvalidInputError, match=f"tag {TAG_MAINTENANCE_WINDOWS}: duration '4x'"):
        windows_for(Settings(), {TAG_MAINTENANCE_WINDOWS: "Mon 22:00/4x UTC"})
    with pytest.raises(SettingsError, match="setting maintenance_windows"):
        windows_for(Settings.model_construct(maintenance_windows="Mon 22:00 UTC"), {})


def test_the_stronger_control_wins_and_names_who_asked() -> None:
    assert control_of(None, {}, "prod") is None
    assert control_of(("pause", "alice"), {}, "prod") == control_of(
        ("pause", "alice"), {TAG_CONTROL: "resume"}, "prod"
    )
    tag_abort = control_of(("pause", "alice"), {TAG_CONTROL: "Abort"}, "prod")
    assert tag_abort is not None and (tag_abort.action, tag_abort.by) == (
        "abort",
        f"tag {TAG_CONTROL} on prod",
    )
    resumed = control_of(("resume", "bob"), {}, "prod")
    assert resumed is not None and (resumed.action, resumed.by) == ("resume", "bob")
    paused_by_tag = control_of(("resume", "bob"), {TAG_CONTROL: "pause"}, "prod")
    assert paused_by_tag is not None and paused_by_tag.action == "pause"


def test_a_bad_control_tag_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="'stop'"):
        control_of(None, {TAG_CONTROL: "stop"}, "prod")


def test_health_alarms_come_from_the_tag_over_the_setting_deduplicated() -> None:
    s = Settings(health_alarms="a, b,a")
    assert alarms_for(s, {}) == (["a", "b"], "setting health_alarms")
    assert alarms_for(s, {TAG_HEALTH_ALARMS: " c "}) == (["c"], f"tag {TAG_HEALTH_ALARMS}")
    assert alarms_for(Settings(), {}) == ([], "")
