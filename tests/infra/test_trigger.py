"""The EventBridge rules start a roll on launch template changes, and on nothing else.

Patterns are read from the synthesized template and evaluated with moto's EventPattern matcher
(moto's TestEventPattern API is a stub).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.infra.cdk_support import Synth, load_event, matches


def _trigger_rules(synth: Synth) -> dict[str, dict[str, Any]]:
    machine_id, _ = synth.roll_machine()
    return {
        rule_id: rule["Properties"]
        for rule_id, rule in synth.resources("AWS::Events::Rule").items()
        if any(t["Arn"] == {"Ref": machine_id} for t in rule["Properties"]["Targets"])
    }


def matching_rules(synth: Synth, event: dict[str, Any]) -> list[str]:
    return [
        rule_id for rule_id, props in _trigger_rules(synth).items() if matches(props["EventPattern"], event)
    ]


@pytest.mark.parametrize(
    "name", ["update_asg_launch_template", "modify_launch_template", "create_launch_template_version"]
)
def test_launch_template_changes_start_exactly_one_execution(synth: Synth, name: str) -> None:
    assert len(matching_rules(synth, load_event(name))) == 1


def _mixed_instances(by: str) -> dict[str, Any]:
    event = load_event("update_asg_launch_template")
    params = event["detail"]["requestParameters"]
    spec = params.pop("launchTemplate")
    if by == "name":
        spec = {"launchTemplateName": "prod-eks-workers", "version": "$Latest"}
    params["mixedInstancesPolicy"] = {
        "launchTemplate": {"launchTemplateSpecification": spec, "overrides": [{"instanceType": "m6i.xlarge"}]}
    }
    return event


@pytest.mark.parametrize("by", ["id", "name"])
def test_mixed_instances_policy_launch_template_starts_a_roll(synth: Synth, by: str) -> None:
    assert len(matching_rules(synth, _mixed_instances(by))) == 1


def test_launch_template_by_name_starts_a_roll(synth: Synth) -> None:
    event = load_event("update_asg_launch_template")
    event["detail"]["requestParameters"]["launchTemplate"] = {"launchTemplateName": "prod-eks-workers"}
    assert len(matching_rules(synth, event)) == 1


def test_capacity_only_update_is_ignored(synth: Synth) -> None:
    assert matching_rules(synth, load_event("update_asg_capacity_only")) == []


def test_mixed_instances_change_without_launch_template_is_ignored(synth: Synth) -> None:
    event = load_event("update_asg_capacity_only")
    event["detail"]["requestParameters"]["mixedInstancesPolicy"] = {
        "instancesDistribution": {"onDemandPercentageAboveBaseCapacity": 50}
    }
    assert matching_rules(synth, event) == []


@pytest.mark.parametrize(
    "name", ["update_asg_launch_template", "modify_launch_template", "create_launch_template_version"]
)
def test_failed_api_calls_are_ignored(synth: Synth, name: str) -> None:
    # CloudTrail records calls that failed too: nothing changed, nothing to roll
    event = load_event(name)
    event["detail"]["errorCode"] = "Client.UnauthorizedOperation"
    assert matching_rules(synth, event) == []


def test_modify_launch_template_without_new_default_is_ignored(synth: Synth) -> None:
    event = load_event("modify_launch_template")
    del event["detail"]["requestParameters"]["ModifyLaunchTemplateRequest"]["SetDefaultVersion"]
    assert matching_rules(synth, event) == []


@pytest.mark.parametrize("name", ["manual", "manual_dry_run"])
def test_manual_inputs_are_not_events(synth: Synth, name: str) -> None:
    assert matching_rules(synth, load_event(name)) == []


def test_other_sources_are_ignored(synth: Synth) -> None:
    event = copy.deepcopy(load_event("update_asg_launch_template"))
    event["source"] = "custom.autoscaling"
    assert matching_rules(synth, event) == []


def test_targets_pass_the_whole_event_with_retries_and_a_dead_letter_queue(synth: Synth) -> None:
    (queue_id,) = synth.resources("AWS::SQS::Queue")
    rules = _trigger_rules(synth)
    assert len(rules) == 3
    for props in rules.values():
        (target,) = props["Targets"]
        # the whole event: no Input / InputPath / InputTransformer
        assert not {"Input", "InputPath", "InputTransformer"} & set(target)
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0


def test_dead_letter_queue_is_encrypted_and_ssl_only(synth: Synth) -> None:
    (queue,) = synth.resources("AWS::SQS::Queue").values()
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (policy,) = synth.resources("AWS::SQS::QueuePolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    # and only the trigger rules may send to it
    sends = [s for s in statements if s["Effect"] == "Allow"]
    assert sends and all(s["Principal"] == {"Service": "events.amazonaws.com"} for s in sends)
    assert all("aws:SourceArn" in s["Condition"]["ArnEquals"] for s in sends)


def test_the_running_sandbox_deploys_the_synthesized_patterns(synth: Synth) -> None:
    # `eks-rolling-sandbox up` puts `event_pattern(name)` on its bus: the same JSON CDK synthesizes.
    from eks_rolling.triggers import TRIGGER_PATTERNS, event_pattern

    synthesized = sorted(
        json.dumps(props["EventPattern"], sort_keys=True)
        for props in _trigger_rules(synth).values()
        if "EventPattern" in props
    )
    declared = sorted(json.dumps(event_pattern(name), sort_keys=True) for name in TRIGGER_PATTERNS)
    assert synthesized == declared
