"""The scheduled drift check (an EventBridge schedule rule's "Scheduled Event"): every opted-in
group with outdated instances is rolled, the others are skipped as up to date. It is what notices
an AMI behind a `resolve:ssm:` alias changing, which emits no CloudTrail event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Field

pytestmark = pytest.mark.slow
SCHEDULED = json.loads((Path(__file__).resolve().parents[1] / "events" / "scheduled.json").read_text())


def test_a_scheduled_check_with_nothing_outdated_writes_nothing(field: Field) -> None:
    mark = field.env.sandbox.request_log.mark()
    with field.runner() as runner:
        result = runner.run(SCHEDULED, timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    out = json.loads(result["output"])
    assert out["trigger"] == "scheduled" and out["has_targets"] is False
    # Only opted-in groups are looked at: eks-system is not even listed
    assert [(s["asg_name"], s["reason"]) for s in out["skipped"]] == [(field.scenario.asg_name, "up to date")]
    assert not field.env.sandbox.request_log.writes(mark)
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0


def test_a_scheduled_check_rolls_a_group_whose_change_sent_no_event(field: Field) -> None:
    # Given a template change whose event never arrived
    field.scenario.bump_launch_template()
    # When the schedule fires
    with field.runner() as runner:
        result = runner.run(SCHEDULED, timeout=300)
    # Then the drifted group is rolled
    assert result["status"] == "SUCCEEDED", result.get("cause")
    out = json.loads(result["output"])
    assert [t["asg_name"] for t in out["targets"]] == [field.scenario.asg_name]
    assert out["results"][0]["status"] == "rolled"
    after = field.state()
    assert not [i for i in after.instances if field.asg.is_outdated(i, after)]
