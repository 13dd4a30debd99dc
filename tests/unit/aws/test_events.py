"""Trigger parsing: manual requests and CloudTrail events in, one TriggerRequest out."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eks_rolling.aws.events import Home, TriggerRequest, parse_trigger
from eks_rolling.errors import InvalidInputError, PermanentError
from eks_rolling.models import RollScope

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


# --- manual ------------------------------------------------------------------------------------
def test_manual_request_defaults_to_a_real_run() -> None:
    assert parse_trigger(load("manual")) == TriggerRequest(kind="manual", asg_names=("prod-eks-workers-a",))


def test_manual_dry_run() -> None:
    req = parse_trigger(load("manual_dry_run"))
    assert req.kind == "manual"
    assert req.dry_run is True
    assert req.event_id is None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"asgName": "a", "dryrun": True}, "dryrun"),  # typo'd key must not silently do a real run
        ({"asgName": "a", "dryRun": "yes"}, "dryRun"),  # no truthy strings
        ({"asgName": "a", "dryRun": 1}, "dryRun"),
        ({"asgName": ""}, "asgName"),
        ({"asgName": " padded "}, "asgName"),
        ({"asgName": 42}, "asgName"),
    ],
)
def test_manual_request_is_strict(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger(raw)


def test_manual_request_carries_its_scope() -> None:
    req = parse_trigger(
        {"asgName": "a", "nodeSelector": "role=worker", "instanceIds": ["i-1"], "excludeSelector": "spot"}
    )
    assert req.scope == RollScope(node_selector="role=worker", instance_ids=["i-1"], exclude_selector="spot")
    assert parse_trigger({"asgName": "a"}).scope is None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"asgName": "a", "nodeSelector": "role in (worker"}, "unbalanced"),
        ({"asgName": "a", "excludeSelector": "a=b c"}, "not a valid label value"),
        ({"asgName": "a", "instanceIds": "i-1"}, "instanceIds"),
    ],
)
def test_a_manual_scope_that_does_not_parse_is_refused(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger(raw)


# --- UpdateAutoScalingGroup --------------------------------------------------------------------
def test_update_asg_with_launch_template() -> None:
    req = parse_trigger(load("update_asg_launch_template"))
    assert req == TriggerRequest(
        kind="update_asg",
        asg_names=("prod-eks-workers-a",),
        launch_template_id="lt-0abc1234def567890",
        launch_template_name=None,
        dry_run=False,
        event_id="6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    )


def test_update_asg_with_mixed_instances_policy_launch_template() -> None:
    event = load("update_asg_launch_template")
    params = event["detail"]["requestParameters"]
    del params["launchTemplate"]
    params["mixedInstancesPolicy"] = {
        "launchTemplate": {
            "launchTemplateSpecification": {"launchTemplateName": "prod-eks-workers", "version": "$Latest"},
            "overrides": [{"instanceType": "m6i.xlarge"}, {"instanceType": "m5.xlarge"}],
        },
        "instancesDistribution": {"onDemandPercentageAboveBaseCapacity": 100},
    }
    req = parse_trigger(event)
    assert req.kind == "update_asg"
    assert req.asg_names == ("prod-eks-workers-a",)
    assert (req.launch_template_id, req.launch_template_name) == (None, "prod-eks-workers")


def test_update_asg_numeric_version_is_accepted() -> None:
    event = load("update_asg_launch_template")
    event["detail"]["requestParameters"]["launchTemplate"]["version"] = 7
    assert parse_trigger(event).launch_template_id == "lt-0abc1234def567890"


def test_capacity_only_update_is_rejected_with_what_was_expected() -> None:
    with pytest.raises(InvalidInputError, match=r"capacity-only.*launchTemplate"):
        parse_trigger(load("update_asg_capacity_only"))


def test_mixed_instances_policy_without_launch_template_is_capacity_only() -> None:
    event = load("update_asg_capacity_only")
    event["detail"]["requestParameters"]["mixedInstancesPolicy"] = {
        "instancesDistribution": {"onDemandBaseCapacity": 2}
    }
    with pytest.raises(InvalidInputError, match="capacity-only"):
        parse_trigger(event)


def test_launch_template_without_id_or_name_is_rejected() -> None:
    event = load("update_asg_launch_template")
    event["detail"]["requestParameters"]["launchTemplate"] = {"version": "3"}
    with pytest.raises(InvalidInputError, match="neither a launch template id nor a name"):
        parse_trigger(event)


def test_update_asg_without_group_name_is_rejected() -> None:
    event = load("update_asg_launch_template")
    del event["detail"]["requestParameters"]["autoScalingGroupName"]
    with pytest.raises(InvalidInputError, match="autoScalingGroupName"):
        parse_trigger(event)


# --- launch template events --------------------------------------------------------------------
def test_modify_launch_template_names_no_group() -> None:
    req = parse_trigger(load("modify_launch_template"))
    assert req.kind == "modify_launch_template"
    assert req.asg_names == ()
    assert req.launch_template_id == "lt-0abc1234def567890"
    assert req.launch_template_name == "prod-eks-workers"  # filled in from the response
    assert req.event_id == "a1b2c3d4-e5f6-4a7b-8c9d-e0f1a2b3c4d5"


def test_modify_launch_template_by_name_without_response() -> None:
    event = load("modify_launch_template")
    event["detail"]["requestParameters"]["ModifyLaunchTemplateRequest"] = {
        "LaunchTemplateName": "prod-eks-workers",
        "SetDefaultVersion": "8",
    }
    event["detail"]["responseElements"] = None
    req = parse_trigger(event)
    assert (req.launch_template_id, req.launch_template_name) == (None, "prod-eks-workers")


def test_create_launch_template_version_fills_id_from_response() -> None:
    req = parse_trigger(load("create_launch_template_version"))
    assert req == TriggerRequest(
        kind="create_launch_template_version",
        launch_template_id="lt-0abc1234def567890",
        launch_template_name="prod-eks-workers",
        event_id="f0e1d2c3-b4a5-4968-8776-655443322110",
    )


def test_launch_template_event_without_any_template_is_rejected() -> None:
    event = load("create_launch_template_version")
    event["detail"]["requestParameters"]["CreateLaunchTemplateVersionRequest"] = {"SourceVersion": "7"}
    event["detail"]["responseElements"] = None
    with pytest.raises(InvalidInputError, match="names no launch template"):
        parse_trigger(event)


def test_ec2_request_wrapper_is_required() -> None:
    event = load("modify_launch_template")
    event["detail"]["requestParameters"] = {"LaunchTemplateId": "lt-0abc1234def567890"}
    with pytest.raises(InvalidInputError, match="ModifyLaunchTemplateRequest"):
        parse_trigger(event)


# --- envelopes that are not ours ---------------------------------------------------------------
def _mutated(name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(load(name))
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (
            _mutated("update_asg_launch_template", ("detail", "eventName"), "DeleteAutoScalingGroup"),
            "unsupported",
        ),
        (_mutated("update_asg_launch_template", ("source",), "aws.ec2"), "must come from aws.autoscaling"),
        (
            _mutated("modify_launch_template", ("detail", "eventSource"), "autoscaling.amazonaws.com"),
            "must come",
        ),
        (
            _mutated(
                "update_asg_launch_template", ("detail-type",), "EC2 Instance State-change Notification"
            ),
            "detail-type",
        ),
        (_mutated("update_asg_launch_template", ("source",), "aws.ssm"), "source"),
        (
            _mutated("update_asg_launch_template", ("detail", "errorCode"), "ValidationError"),
            "failed with ValidationError",
        ),
    ],
)
def test_foreign_or_failed_events_are_rejected(event: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger(event)


@pytest.mark.parametrize("raw", [None, [], "asg", {}, {"asg_name": "a"}, {"AutoScalingGroupName": "a"}])
def test_unrecognised_input_says_what_was_expected(raw: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"expected a manual request .*UpdateAutoScalingGroup"):
        parse_trigger(raw)


def test_invalid_input_is_a_permanent_error_and_does_not_echo_the_input() -> None:
    secret = "do-not-log-this-value"
    with pytest.raises(InvalidInputError) as info:
        parse_trigger({"asgName": "a", "dryRun": secret})
    assert isinstance(info.value, PermanentError)
    assert secret not in str(info.value)


# --- whose group: account, region and the name itself ----------------------------------------
HOME = Home(account="123456789012", region="eu-west-1")  # where the fixture events were recorded
ASG_ARN = "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:6d0b6c1e-2c4f-4e4a-9e0b-3f1b2c3d4e5f:autoScalingGroupName/{name}"


def test_home_is_read_from_the_execution_arn() -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:execution:eks-rolling:run-1"
    assert Home.of(arn, "eu-west-1") == HOME
    assert Home.of("cli-plan-1a2b3c4d", "eu-west-1") == Home(account=None, region="eu-west-1")


@pytest.mark.parametrize(
    "name", ["update_asg_launch_template", "modify_launch_template", "create_launch_template_version"]
)
def test_events_of_this_account_and_region_are_accepted(name: str) -> None:
    assert parse_trigger(load(name), HOME) == parse_trigger(load(name))


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("account",), "210987654321", "account 210987654321"),
        (("detail", "recipientAccountId"), "210987654321", "account 210987654321"),
        (("region",), "us-east-1", "region us-east-1"),
        (("detail", "awsRegion"), "us-east-1", "region us-east-1"),
    ],
)
def test_events_of_another_account_or_region_are_refused(
    path: tuple[str, ...], value: str, fragment: str
) -> None:
    # A same-named group here must never be rolled for a change made elsewhere.
    event = _mutated("update_asg_launch_template", path, value)
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger(event, HOME)
    assert parse_trigger(event).asg_names == ("prod-eks-workers-a",)  # where home is unknown


def test_manual_arn_of_this_account_and_region_is_the_group_name() -> None:
    arn = ASG_ARN.format(region="eu-west-1", account="123456789012", name="prod-eks-workers-a")
    assert parse_trigger({"asgName": arn}, HOME).asg_names == ("prod-eks-workers-a",)


@pytest.mark.parametrize(
    ("arn", "fragment"),
    [
        (ASG_ARN.format(region="eu-west-1", account="210987654321", name="w"), "account 210987654321"),
        (ASG_ARN.format(region="us-east-1", account="123456789012", name="w"), "region us-east-1"),
        ("arn:aws:eks:eu-west-1:123456789012:nodegroup/c/w/1", "not an Auto Scaling group ARN"),
        (ASG_ARN.format(region="eu-west-1", account="123456789012", name="w" * 256), "255 characters"),
    ],
)
def test_manual_arn_elsewhere_or_malformed_is_refused(arn: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger({"asgName": arn}, HOME)


@pytest.mark.parametrize("name", ["prod-wörker-節点-🚀", "a" * 255, "with space inside"])
def test_names_auto_scaling_accepts_are_accepted(name: str) -> None:
    assert parse_trigger({"asgName": name}).asg_names == (name,)
    event = _mutated(
        "update_asg_launch_template", ("detail", "requestParameters", "autoScalingGroupName"), name
    )
    assert parse_trigger(event).asg_names == (name,)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("workers\u0000", "U\\+0000"),
        ("work\u001fers", "U\\+001F"),
        ("workers\ud800", "unicode string"),  # a lone surrogate, as JSON can carry
        ("w" * 256, "255 characters"),
    ],
)
def test_names_auto_scaling_refuses_are_refused_by_name(name: str, fragment: str) -> None:
    # AWS would answer these with a generic ValidationError; on moto they are just "not found".
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger({"asgName": name})
    event = _mutated(
        "update_asg_launch_template", ("detail", "requestParameters", "autoScalingGroupName"), name
    )
    with pytest.raises(InvalidInputError, match=fragment):
        parse_trigger(event)


def test_trigger_request_round_trips_as_a_step_payload() -> None:
    req = parse_trigger(load("update_asg_launch_template"))
    payload = json.loads(json.dumps(req.model_dump(mode="json")))
    assert TriggerRequest.model_validate(payload) == req


def test_events_module_does_not_import_boto3() -> None:
    code = (
        "import sys, eks_rolling.aws.events; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- the drift check: EventBridge's Scheduled Event -------------------------------------------
SCHEDULED: dict[str, Any] = load("scheduled")


def test_a_scheduled_event_is_a_drift_check() -> None:
    assert parse_trigger(SCHEDULED) == TriggerRequest(kind="scheduled", event_id=SCHEDULED["id"])


@pytest.mark.parametrize(
    ("change", "match"),
    [({"source": "aws.autoscaling"}, "source"), ({"id": ""}, "id"), ({"version": None}, "version")],
    ids=["foreign-source", "empty-id", "no-version"],
)
def test_a_malformed_scheduled_event_is_invalid_input(change: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        parse_trigger({**SCHEDULED, **change})
