"""ResolveTarget with each trigger kind, against ASGs in moto: launch template events that do
not name the ASG reach the ASGs that follow $Latest / $Default and are opted in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eks_rolling.errors import AsgNotFoundError, AsgNotOptedInError, InvalidInputError
from eks_rolling.labels import TAG_OPT_IN
from eks_rolling.models import ResolveTargetInput
from eks_rolling.services.deps import Deps
from eks_rolling.services.resolve import resolve_target
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.moto_server import MotoServer
from tests.factories.aws import use_moto

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXEC = "arn:aws:states:us-east-1:123456789012:execution:eks-rolling:run-1"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Deps, str]]:
    with MotoServer() as moto:
        moto.reset()
        use_moto(monkeypatch, moto.endpoint_url)
        ec2, asg = moto.client("ec2"), moto.client("autoscaling")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")[
            "Subnet"
        ]["SubnetId"]
        lt = ec2.create_launch_template(
            LaunchTemplateName="workers",
            LaunchTemplateData={"ImageId": "ami-0000000000000001a", "InstanceType": "m5.large"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        for name, version, opted in (
            ("latest-in", "$Latest", True),
            ("default-in", "$Default", True),
            ("pinned-in", "1", True),
            ("latest-out", "$Latest", False),
        ):
            tags = [{"Key": "kubernetes.io/cluster/prod", "Value": "owned"}] + (
                [{"Key": TAG_OPT_IN, "Value": "true"}] if opted else []
            )
            asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                MinSize=0,
                MaxSize=2,
                DesiredCapacity=0,
                LaunchTemplate={"LaunchTemplateId": lt, "Version": version},
                VPCZoneIdentifier=subnet,
                Tags=[
                    {
                        **t,
                        "PropagateAtLaunch": False,
                        "ResourceId": name,
                        "ResourceType": "auto-scaling-group",
                    }
                    for t in tags
                ],
            )
        yield Deps(Settings()), lt


def _event(name: str, lt: str) -> dict:  # type: ignore[type-arg]
    # Recorded in eu-west-1; delivered here as if made in this roller's region (others are refused).
    event = json.loads((EVENTS / name).read_text())
    event["region"] = event["detail"]["awsRegion"] = "us-east-1"
    return event  # type: ignore[no-any-return]


def test_create_launch_template_version_reaches_opted_in_groups_on_latest(world: tuple[Deps, str]) -> None:
    deps, lt = world
    ev = _event("create_launch_template_version.json", lt)
    ev["detail"]["requestParameters"]["CreateLaunchTemplateVersionRequest"]["LaunchTemplateId"] = lt
    out = resolve_target(ResolveTargetInput(event=ev, execution_id=EXEC), deps)
    assert [t.asg_name for t in out.targets] == ["latest-in"]
    assert [s.asg_name for s in out.skipped] == ["latest-out"]
    assert out.skipped[0].reason.startswith("AsgNotOptedInError: ASG latest-out is not opted in")
    assert out.targets[0].cluster_name == "prod" and out.targets[0].taint_value == "run-1"


def test_modify_launch_template_reaches_groups_on_default(world: tuple[Deps, str]) -> None:
    deps, lt = world
    ev = _event("modify_launch_template.json", lt)
    ev["detail"]["requestParameters"]["ModifyLaunchTemplateRequest"]["LaunchTemplateId"] = lt
    out = resolve_target(ResolveTargetInput(event=ev, execution_id=EXEC), deps)
    assert [t.asg_name for t in out.targets] == ["default-in"]


def test_manual_and_explicit_inputs(world: tuple[Deps, str]) -> None:
    deps, _ = world
    out = resolve_target(
        ResolveTargetInput(event={"asgName": "pinned-in", "dryRun": True}, execution_id=EXEC), deps
    )
    assert out.has_targets and out.targets[0].dry_run
    with pytest.raises(AsgNotOptedInError):
        resolve_target(ResolveTargetInput(event={"asgName": "latest-out"}, execution_id=EXEC), deps)
    with pytest.raises(AsgNotFoundError):
        resolve_target(ResolveTargetInput(event={"asgName": "nope"}, execution_id=EXEC), deps)
    with pytest.raises(InvalidInputError):
        resolve_target(ResolveTargetInput(event={"asg": "pinned-in"}, execution_id=EXEC), deps)


def test_an_asg_of_another_cluster_is_refused(
    world: tuple[Deps, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EKS_ROLLING_CLUSTER_NAME", "staging")
    with pytest.raises(InvalidInputError, match="belongs to cluster prod, not staging"):
        resolve_target(
            ResolveTargetInput(event={"asgName": "pinned-in"}, execution_id=EXEC), Deps(Settings())
        )
