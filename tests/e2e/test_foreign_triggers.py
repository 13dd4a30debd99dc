"""An UpdateAutoScalingGroup event fires for every group in the account. One for a group that is
not opted in, or no longer exists, ends as a skip with the reason: no failed execution (which
would fire the failed-executions alarm) and no write. A manual start still fails loudly."""

from __future__ import annotations

import json

import pytest

from eks_rolling_sandbox.scenarios import cloudtrail_update_asg_event
from tests.e2e.conftest import Field, states_entered

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("asg", "error"),
    [("eks-system", "AsgNotOptedInError"), ("deleted-meanwhile", "AsgNotFoundError")],
    ids=["not-opted-in", "gone"],
)
def test_an_event_for_a_foreign_group_ends_as_skipped(field: Field, asg: str, error: str) -> None:
    # Given a launch template change on a group that is not ours to roll
    event = cloudtrail_update_asg_event(asg, field.scenario.launch_template_id, "1", region=field.env.region)
    mark = field.env.sandbox.request_log.mark()
    tags_before = field.state().tags
    # When EventBridge delivers it
    with field.runner() as runner:
        result = runner.run(event, timeout=60)
        names = [n for n, _ in states_entered(runner.history(result["executionArn"]))]
    # Then the execution succeeds with the group skipped and the reason, and nothing was written
    assert result["status"] == "SUCCEEDED", result.get("cause")
    out = json.loads(result["output"])
    assert out["has_targets"] is False
    assert [s["asg_name"] for s in out["skipped"]] == [asg]
    assert out["skipped"][0]["reason"].startswith(error)
    assert names == ["ResolveTarget", "HasTargets", "NothingToDo"]
    assert not field.env.sandbox.request_log.writes(mark)
    assert field.state().tags == tags_before
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0
