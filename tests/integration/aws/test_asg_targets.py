"""What an instance is compared with, against moto: the launch template of a MixedInstancesPolicy
override for its instance type, and the AMI a `resolve:ssm:` alias names now."""

from __future__ import annotations

from typing import Any

import pytest

from eks_rolling.aws.asg import AsgOps, LaunchTarget, LaunchTemplateRef
from eks_rolling.errors import AmiAliasError
from eks_rolling.labels import TAG_OPT_IN
from eks_rolling_sandbox.cloud.moto_server import MotoServer

AMI_X86, AMI_ARM, AMI_ARM_NEW = "ami-1e749f67", "ami-03cf127a", "ami-1812c061"
AZ = "us-east-1a"
ALIAS_PARAM = "/platform/eks/1.31/node-ami"  # moto reserves /aws/ for its own public parameters


@pytest.fixture
def aws(moto: MotoServer) -> dict[str, Any]:
    return {name: moto.client(name) for name in ("autoscaling", "ec2", "ssm")}


@pytest.fixture
def ops(clients: dict[str, Any], moto: MotoServer) -> AsgOps:
    return AsgOps(clients["autoscaling"], clients["ec2"], moto.client("ssm"))


def _lt(ec2: Any, name: str, ami: str, itype: str) -> str:
    lt_id: str = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami, "InstanceType": itype}
    )["LaunchTemplate"]["LaunchTemplateId"]
    return lt_id


def _group(asg: Any, name: str, **spec: Any) -> None:
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=4, DesiredCapacity=0, AvailabilityZones=[AZ], **spec
    )


def _launch_into(aws: dict[str, Any], group: str, lt_id: str, itype: str, image: str | None = None) -> str:
    """An instance launched from `lt_id` (so EC2 tags it with that template), then in the group,
    as the group itself would have launched it for this instance type."""
    extra = {"ImageId": image} if image else {}
    iid: str = aws["ec2"].run_instances(
        LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "1"},
        InstanceType=itype,
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": AZ},
        **extra,
    )["Instances"][0]["InstanceId"]
    aws["autoscaling"].attach_instances(InstanceIds=[iid], AutoScalingGroupName=group)
    return iid


def test_an_override_with_its_own_template_is_the_target_for_its_instance_type(
    ops: AsgOps, aws: dict[str, Any]
) -> None:
    # Given a mixed x86/arm64 group: the arm64 type's override names its own template
    x86 = _lt(aws["ec2"], "workers-x86", AMI_X86, "m5.large")
    arm = _lt(aws["ec2"], "workers-arm", AMI_ARM, "m6g.large")
    _group(
        aws["autoscaling"],
        "mixed",
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": x86, "Version": "$Latest"},
                "Overrides": [
                    {"InstanceType": "m5.large"},
                    {
                        "InstanceType": "m6g.large",
                        "LaunchTemplateSpecification": {"LaunchTemplateId": arm, "Version": "$Latest"},
                    },
                ],
            }
        },
    )
    on_arm = _launch_into(aws, "mixed", arm, "m6g.large")
    on_x86 = _launch_into(aws, "mixed", x86, "m5.large")

    # When the group is described, Then each instance is compared with its own type's template
    state = ops.describe("mixed")
    assert state.overrides == (
        (
            "m6g.large",
            LaunchTarget(
                LaunchTemplateRef(arm, "workers-arm", "$Latest"), "1", AMI_ARM, instance_type="m6g.large"
            ),
        ),
    )
    # ...and with several types, new instances have no one type (capacity uses the old nodes')
    assert state.target_instance_type is None
    by_id = {i.instance_id: i for i in state.instances}
    assert not ops.is_outdated(by_id[on_arm], state)
    assert not ops.is_outdated(by_id[on_x86], state)

    # ... a new version of the arm64 template makes only the arm64 instance outdated
    aws["ec2"].create_launch_template_version(
        LaunchTemplateId=arm, LaunchTemplateData={"ImageId": AMI_ARM_NEW, "InstanceType": "m6g.large"}
    )
    state = ops.describe("mixed")
    by_id = {i.instance_id: i for i in state.instances}
    assert ops.is_outdated(by_id[on_arm], state)
    assert not ops.is_outdated(by_id[on_x86], state)
    # ... and a CreateLaunchTemplateVersion event for the override's template reaches the group
    assert ops.asgs_using_launch_template(arm, None, {"$Latest"}) == ["mixed"]


def test_an_ssm_alias_is_compared_with_each_instances_actual_image(ops: AsgOps, aws: dict[str, Any]) -> None:
    # Given a template whose ImageId is an SSM alias, and an instance launched from what it named
    aws["ssm"].put_parameter(Name=ALIAS_PARAM, Value=AMI_X86, Type="String")
    lt = _lt(aws["ec2"], "workers", f"resolve:ssm:{ALIAS_PARAM}", "m5.large")
    _group(aws["autoscaling"], "aliased", LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"})
    iid = _launch_into(aws, "aliased", lt, "m5.large", image=AMI_X86)
    state = ops.describe("aliased")
    assert (state.image_alias, state.target_image_id) == (f"resolve:ssm:{ALIAS_PARAM}", AMI_X86)
    assert not ops.is_outdated(state.instances[0], state)

    # When AWS publishes a new AMI under the alias: no new template version, no CloudTrail event
    aws["ssm"].put_parameter(Name=ALIAS_PARAM, Value=AMI_ARM_NEW, Type="String", Overwrite=True)

    # Then the instance, on the same template version, is outdated by its ImageId
    state = ops.describe("aliased")
    assert state.instances[0].instance_id == iid
    assert state.instances[0].launch_template_version == state.target_version == "1"
    assert state.target_image_id == AMI_ARM_NEW
    assert ops.is_outdated(state.instances[0], state)


@pytest.mark.parametrize(
    ("value", "match"), [(None, "ParameterNotFound"), ("latest", "not an AMI id")], ids=["missing", "not-ami"]
)
def test_an_alias_that_cannot_be_resolved_is_a_named_error(
    ops: AsgOps, aws: dict[str, Any], value: str | None, match: str
) -> None:
    if value is not None:
        aws["ssm"].put_parameter(Name="/team/ami", Value=value, Type="String")
    lt = _lt(aws["ec2"], "workers", "resolve:ssm:/team/ami", "m5.large")
    _group(aws["autoscaling"], "aliased", LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"})
    with pytest.raises(AmiAliasError, match=match):
        ops.describe("aliased")


def test_opted_in_groups_are_listed_by_tag(ops: AsgOps, aws: dict[str, Any]) -> None:
    lt = _lt(aws["ec2"], "workers", AMI_X86, "m5.large")
    for name, opted in (("in-a", True), ("out", False), ("in-b", True)):
        _group(
            aws["autoscaling"],
            name,
            LaunchTemplate={"LaunchTemplateId": lt},
            Tags=[{"Key": TAG_OPT_IN, "Value": "true" if opted else "no", "PropagateAtLaunch": False}],
        )
    assert ops.opted_in(TAG_OPT_IN, "true") == ["in-a", "in-b"]
