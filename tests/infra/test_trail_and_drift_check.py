"""What starts a roll besides the launch template events: the CloudTrail trail those events need
(`create_trail`), and a scheduled drift check (`drift_check_schedule`), both off by default."""

from __future__ import annotations

from typing import Any

import pytest

from infra.app import project_context
from infra.config import ConfigError, load_config
from tests.infra.cdk_support import Synth


@pytest.fixture
def context() -> dict[str, Any]:
    return project_context()


def _schedules(synth: Synth) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]


def test_by_default_no_trail_and_no_schedule(synth: Synth) -> None:
    assert synth.resources("AWS::CloudTrail::Trail") == {}
    assert _schedules(synth) == []


def test_create_trail_records_this_regions_write_management_events(variant: Synth) -> None:
    # Given create_trail=true: EventBridge only sees "AWS API Call via CloudTrail" with a trail
    (trail,) = variant.resources("AWS::CloudTrail::Trail").values()
    props = trail["Properties"]
    # Then the trail logs, covers this region, and records write management events
    assert props["IsLogging"] is True
    assert props["IsMultiRegionTrail"] is False
    (selector,) = props["EventSelectors"]
    assert selector["IncludeManagementEvents"] is True
    assert selector["ReadWriteType"] in ("WriteOnly", "All")
    assert props["EnableLogFileValidation"] is True
    # ... into a private, encrypted bucket that outlives the stack under a generated name
    bucket_id = props["S3BucketName"]["Ref"]
    bucket = variant.template["Resources"][bucket_id]
    assert bucket["DeletionPolicy"] == "Retain"
    assert "BucketName" not in bucket["Properties"]
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert bucket["Properties"]["BucketEncryption"]


def test_drift_check_starts_the_state_machine_with_the_scheduled_event_unchanged(variant: Synth) -> None:
    machine_id, _ = variant.roll_machine()
    (rule,) = _schedules(variant)
    assert rule["ScheduleExpression"] == "rate(1 day)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": machine_id}
    # no Input / InputPath / InputTransformer: ResolveTarget gets the Scheduled Event itself
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)
    # and a failed start is retried, then dead-lettered like the event triggers' starts
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target


@pytest.mark.parametrize("bad", ["daily", "rate(0 days)", "rate(1 days)", "rate(5 day)", "cron(0 6 * *)"])
def test_a_bad_schedule_fails_synth_naming_the_key(context: dict[str, Any], bad: str) -> None:
    with pytest.raises(ConfigError, match="drift_check_schedule"):
        load_config({**context, "drift_check_schedule": bad})


@pytest.mark.parametrize("good", ["rate(1 day)", "rate(12 hours)", "cron(0 6 * * ? *)", ""])
def test_good_schedules_and_blank_are_accepted(context: dict[str, Any], good: str) -> None:
    config = load_config({**context, "drift_check_schedule": good, "create_trail": "true"})
    assert config.drift_check_schedule == (good or None)
    assert config.create_trail is True
