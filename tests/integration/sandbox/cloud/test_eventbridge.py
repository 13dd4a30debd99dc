"""CloudTrail -> default bus -> rules -> Step Functions over the sandbox's moto server: the calls
that change a launch template in use start the state machine through the rule the CDK app
deploys for them, with CloudTrail's record as input; every other write, failed calls included,
is recorded and matches nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from eks_rolling.aws.events import parse_trigger
from eks_rolling.triggers import TRIGGER_PATTERNS, event_pattern
from eks_rolling_sandbox.cloud.eventbridge import BusRecord, EventBus
from eks_rolling_sandbox.cloud.moto_server import MotoServer
from tests.infra.cdk_support import load_event

AMI = "ami-0123456789abcdef0"


@pytest.fixture
def bus(moto: MotoServer) -> Iterator[EventBus]:
    role = "arn:aws:iam::123456789012:role/events"
    machine = moto.client("stepfunctions").create_state_machine(
        name="roll",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    events = moto.client("events")
    for name in TRIGGER_PATTERNS:
        events.put_rule(Name=name, EventPattern=json.dumps(event_pattern(name)), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": "sm", "Arn": machine, "RoleArn": role}])
    bus = EventBus(moto, region=moto.region).start()
    yield bus
    bus.stop()


def _records(bus: EventBus, count: int, timeout: float = 10.0) -> list[BusRecord]:
    deadline = time.monotonic() + timeout
    while len(bus.records()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return bus.records()


def test_each_launch_template_change_starts_the_state_machine_by_its_rule(
    moto: MotoServer, bus: EventBus
) -> None:
    ec2, asg = moto.client("ec2"), moto.client("autoscaling")
    # Given a launch template and a group on it (writes no rule matches)
    lt = ec2.create_launch_template(LaunchTemplateName="workers", LaunchTemplateData={"ImageId": AMI})[
        "LaunchTemplate"
    ]["LaunchTemplateId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="workers",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=[f"{moto.region}a"],
        LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"},
    )
    # When the template gets a new version, made the default, and the group is pointed at it
    ec2.create_launch_template_version(LaunchTemplateId=lt, LaunchTemplateData={"ImageId": AMI})
    ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="2")
    asg.update_auto_scaling_group(
        AutoScalingGroupName="workers", LaunchTemplate={"LaunchTemplateName": "workers", "Version": "2"}
    )
    # and calls that change no launch template in use are made too
    asg.update_auto_scaling_group(AutoScalingGroupName="workers", MinSize=0, MaxSize=3)
    with pytest.raises(ec2.exceptions.ClientError):
        ec2.create_launch_template_version(LaunchTemplateId="lt-0000000000000dead", LaunchTemplateData={})
    # Then every write is on the bus, and only the three changes matched, each by its own rule
    records = _records(bus, 7)
    assert [(r.event["detail"]["eventName"], r.matched) for r in records] == [
        ("CreateLaunchTemplate", []),
        ("CreateAutoScalingGroup", []),
        ("CreateLaunchTemplateVersion", ["LaunchTemplateVersionCreated"]),
        ("ModifyLaunchTemplate", ["LaunchTemplateDefaultVersionChanged"]),
        ("UpdateAutoScalingGroup", ["AsgLaunchTemplateChanged"]),
        ("UpdateAutoScalingGroup", []),
        ("CreateLaunchTemplateVersion", []),
    ]
    assert records[-1].event["detail"]["errorCode"] == "InvalidLaunchTemplateId.NotFound"
    # and each match started one execution with CloudTrail's record as its whole input
    sfn = moto.client("stepfunctions")
    for record in records:
        assert len(record.deliveries) == len(record.matched)
        for delivery in record.deliveries:
            assert delivery.execution_arn, delivery.error
            started = sfn.describe_execution(executionArn=delivery.execution_arn)
            assert json.loads(started["input"]) == record.event
    # which the tool reads as the change it is
    triggers = [parse_trigger(r.event) for r in records if r.matched]
    assert [(t.kind, t.launch_template_id, t.launch_template_name) for t in triggers] == [
        ("create_launch_template_version", lt, "workers"),  # the name from the response elements
        ("modify_launch_template", lt, "workers"),
        ("update_asg", None, "workers"),
    ]
    assert triggers[2].asg_names == ("workers",)


@pytest.mark.parametrize(
    ("fixture", "call"),
    [
        ("create_launch_template_version", "CreateLaunchTemplateVersion"),
        ("modify_launch_template", "ModifyLaunchTemplate"),
        ("update_asg_launch_template", "UpdateAutoScalingGroup"),
    ],
)
def test_the_record_has_cloudtrails_shape(moto: MotoServer, bus: EventBus, fixture: str, call: str) -> None:
    # Given the same call as a recorded CloudTrail event (tests/events), made against moto
    ec2, asg = moto.client("ec2"), moto.client("autoscaling")
    lt = ec2.create_launch_template(LaunchTemplateName="w", LaunchTemplateData={"ImageId": AMI})[
        "LaunchTemplate"
    ]["LaunchTemplateId"]
    if call == "CreateLaunchTemplateVersion":
        ec2.create_launch_template_version(
            LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={"ImageId": AMI}
        )
    elif call == "ModifyLaunchTemplate":
        ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="1")
    else:
        asg.create_auto_scaling_group(
            AutoScalingGroupName="w",
            MinSize=0,
            MaxSize=1,
            AvailabilityZones=[f"{moto.region}a"],
            LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"},
        )
        asg.update_auto_scaling_group(
            AutoScalingGroupName="w", LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"}
        )
    record = next(
        r
        for r in reversed(_records(bus, 3 if call == "UpdateAutoScalingGroup" else 2))
        if r.event["detail"]["eventName"] == call
    )
    recorded: dict[str, Any] = load_event(fixture)
    # Then the envelope and the record carry the same fields, with the same request layout
    assert set(record.event) == set(recorded)
    assert set(recorded["detail"]) <= set(record.event["detail"])
    ours, theirs = record.event["detail"], recorded["detail"]
    assert set(ours["requestParameters"]) == set(theirs["requestParameters"])
    assert (ours["responseElements"] is None) == (theirs["responseElements"] is None)
    if theirs["responseElements"]:
        (key,) = theirs["responseElements"]
        assert set(theirs["responseElements"][key]) - {"requestId"} <= set(ours["responseElements"][key])
