"""SurgeCapacity when waves run together (planning.together): children that surge at once agree on
one absolute floor, so no surge is lost to a read-modify-write race, and the floor follows the
terminations with decrement instead of launching again."""

from __future__ import annotations

from typing import Any

import pytest

from eks_rolling.models import AsgOriginals, RollContext, SurgeCapacityInput
from eks_rolling.services.deps import Deps
from eks_rolling.services.roll import surge_capacity
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.bridge import patch_moto_asg
from eks_rolling_sandbox.cloud.moto_server import MotoServer
from tests.factories.aws import use_moto
from tests.integration.aws.test_asg import AMI_NEW, add_version, create_asg, create_lt

CTX = RollContext(
    execution_id="arn:aws:states:us-east-1:123456789012:execution:eks-rolling:run-1",
    asg_name="workers",
    cluster_name="demo",
    taint_value="run-1",
)


@pytest.fixture
def deps(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Deps:
    patch_moto_asg()  # launches tagged with the group's version, as on AWS (the sandbox's fix)
    use_moto(monkeypatch, moto.endpoint_url)
    return Deps(Settings())


def _surge(deps: Deps, over_old: int) -> int:
    inp = SurgeCapacityInput(
        ctx=CTX,
        batch=[],
        asg=AsgOriginals(desired=4, min_size=1, max_size=6),
        surge_over_old=over_old,
    )
    return surge_capacity(inp, deps).desired


def test_children_surging_at_once_agree_and_follow_the_terminations(deps: Deps, moto: MotoServer) -> None:
    asg: Any = moto.client("autoscaling")
    ec2: Any = moto.client("ec2")
    # Given 4 old instances (the group now follows version 2) and a plan floor of 4 (desired 4 + 4 old)
    lt = create_lt(ec2, "workers-lt")
    create_asg(asg, "workers", {"LaunchTemplateId": lt, "Version": "1"}, desired=4, max_size=6)
    asg.update_auto_scaling_group(
        AutoScalingGroupName="workers",
        LaunchTemplate={"LaunchTemplateId": lt, "Version": add_version(ec2, lt, AMI_NEW)},
    )
    # When two children surge one after the other, both having read desired 4
    # Then both ask for 8 (a relative surge would have asked 4 + their batch each, from one read),
    # and MaxSize is raised for it (raise_max_size is on by default)
    assert [_surge(deps, 4), _surge(deps, 4)] == [8, 8]
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["workers"])["AutoScalingGroups"][0]
    assert (group["DesiredCapacity"], group["MaxSize"], len(group["Instances"])) == (8, 8, 8)
    # When an old instance is terminated with decrement, a child starting later asks for nothing more
    old = next(i for i in group["Instances"] if i["LaunchTemplate"]["Version"] == "1")
    asg.terminate_instance_in_auto_scaling_group(
        InstanceId=old["InstanceId"], ShouldDecrementDesiredCapacity=True
    )
    assert _surge(deps, 4) == 7
