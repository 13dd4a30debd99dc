"""AsgOps against moto over HTTP: old vs new instances, surge, terminate, LT resolution."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource

from eks_rolling.aws.asg import AsgInstance, AsgOps, AsgState, LaunchTemplateRef
from eks_rolling.aws.instance_facts import FactsCache, InstanceFacts
from eks_rolling.errors import AsgNotFoundError, CapacityError, LaunchTemplateNotFoundError
from eks_rolling.labels import TAG_OPT_IN
from eks_rolling_sandbox.cloud.bridge import ACCOUNT, patch_moto_asg
from eks_rolling_sandbox.cloud.moto_server import MotoServer

AMI_OLD = "ami-1e749f67"
AMI_NEW = "ami-03cf127a"
AMI_NEWER = "ami-1812c061"
AZS = ["us-east-1a", "us-east-1b"]


@pytest.fixture
def ops(clients: dict[str, Any]) -> AsgOps:
    # Its own memory of EC2's instance facts: what a test counts is not shaped by earlier tests.
    return AsgOps(clients["autoscaling"], clients["ec2"], facts=FactsCache())


@pytest.fixture
def asg(moto: MotoServer) -> Any:
    return moto.client("autoscaling")


@pytest.fixture
def ec2(moto: MotoServer) -> Any:
    return moto.client("ec2")


def lt_data(ami: str) -> dict[str, Any]:
    # Full data on every version: moto does not inherit from SourceVersion.
    return {
        "ImageId": ami,
        "InstanceType": "t3.medium",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "eks-worker"}]}],
    }


def create_lt(ec2: Any, name: str, ami: str = AMI_OLD) -> str:
    lt_id: str = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=lt_data(ami))[
        "LaunchTemplate"
    ]["LaunchTemplateId"]
    return lt_id


def add_version(ec2: Any, lt_id: str, ami: str) -> str:
    version = ec2.create_launch_template_version(
        LaunchTemplateId=lt_id, SourceVersion="1", LaunchTemplateData=lt_data(ami)
    )["LaunchTemplateVersion"]["VersionNumber"]
    return str(version)


def create_asg(
    asg: Any, name: str, lt: dict[str, str] | None, *, desired: int = 4, max_size: int = 6
) -> None:
    kwargs: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "MinSize": 1 if desired else 0,
        "MaxSize": max_size,
        "DesiredCapacity": desired,
        "AvailabilityZones": AZS,
        "Tags": [
            {"Key": TAG_OPT_IN, "Value": "true", "PropagateAtLaunch": False},
            {"Key": "kubernetes.io/cluster/demo", "Value": "owned", "PropagateAtLaunch": True},
        ],
    }
    if lt is not None:
        kwargs["LaunchTemplate"] = lt
    asg.create_auto_scaling_group(**kwargs)


@pytest.fixture
def rolled_lt(asg: Any, ec2: Any) -> str:
    """Given ASG `workers` (4 instances on LT v1, AMI_OLD) that was then moved to v2 (AMI_NEW),
    which is also the template's default version."""
    lt_id = create_lt(ec2, "workers-lt")
    create_asg(asg, "workers", {"LaunchTemplateId": lt_id, "Version": "1"})
    assert add_version(ec2, lt_id, AMI_NEW) == "2"
    ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="2")
    asg.update_auto_scaling_group(
        AutoScalingGroupName="workers", LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "2"}
    )
    return lt_id


def outdated(ops: AsgOps, state: AsgState) -> list[str]:
    return sorted(i.instance_id for i in state.instances if ops.is_outdated(i, state))


# --- describe / old vs new ---------------------------------------------------------------------
def test_old_instances_are_outdated_by_tag_although_moto_reports_them_on_v2(
    ops: AsgOps, asg: Any, rolled_lt: str
) -> None:
    raw = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["workers"])["AutoScalingGroups"][0]
    # The moto trap: every instance is reported on the template's default version, now 2.
    assert {i["LaunchTemplate"]["Version"] for i in raw["Instances"]} == {"2"}

    state = ops.describe("workers")

    assert state.launch_template == LaunchTemplateRef(id=rolled_lt, name="workers-lt", version_spec="2")
    assert (state.target_version, state.target_image_id) == ("2", AMI_NEW)
    assert (state.min_size, state.max_size, state.desired) == (1, 6, 4)
    assert set(state.availability_zones) == set(AZS)
    assert state.tags == {TAG_OPT_IN: "true", "kubernetes.io/cluster/demo": "owned"}
    assert len(state.instances) == 4
    assert {(i.launch_template_id, i.launch_template_version, i.image_id) for i in state.instances} == {
        (rolled_lt, "1", AMI_OLD)
    }
    assert all(i.lifecycle_state == "InService" and i.az in AZS for i in state.instances)
    assert len(outdated(ops, state)) == 4


def test_surge_launches_new_instances_that_are_not_outdated(ops: AsgOps, rolled_lt: str) -> None:
    old = {i.instance_id for i in ops.describe("workers").instances}

    ops.set_capacity("workers", desired=6)
    state = ops.describe("workers")

    new = [i for i in state.instances if i.instance_id not in old]
    assert state.desired == 6
    assert len(new) == 2
    assert all((i.launch_template_version, i.image_id) == ("2", AMI_NEW) for i in new)
    assert not any(ops.is_outdated(i, state) for i in new)
    assert set(outdated(ops, state)) == old


def test_set_capacity_raises_max_in_the_same_call_and_is_idempotent(ops: AsgOps, rolled_lt: str) -> None:
    ops.set_capacity("workers", desired=8, max_size=8)
    ops.set_capacity("workers", desired=8, max_size=8)  # a Step Functions retry

    state = ops.describe("workers")
    assert (state.desired, state.max_size) == (8, 8)
    assert len(state.instances) == 8


def test_set_capacity_beyond_max_is_refused_before_calling_aws(ops: AsgOps, rolled_lt: str) -> None:
    # moto itself would accept desired > max and launch the instances.
    with pytest.raises(CapacityError, match="outside min 1 / max 6"):
        ops.set_capacity("workers", desired=7)
    assert ops.describe("workers").desired == 4


def test_terminate_with_decrement_is_harmless_to_retry(ops: AsgOps, rolled_lt: str) -> None:
    victim = ops.describe("workers").instances[0].instance_id

    assert ops.terminate(victim, decrement=True) is True
    assert ops.terminate(victim, decrement=True) is False  # retried step: nothing happens

    state = ops.describe("workers")
    assert state.desired == 3
    assert victim not in {i.instance_id for i in state.instances}
    assert len(state.instances) == 3


def test_terminate_refuses_an_instance_of_another_group(
    ops: AsgOps, asg: Any, ec2: Any, rolled_lt: str
) -> None:
    create_asg(asg, "other", {"LaunchTemplateId": rolled_lt, "Version": "2"}, desired=1)
    stranger = ops.describe("other").instances[0].instance_id

    assert ops.terminate(stranger, asg_name="workers") is False
    assert ops.terminate("i-0123456789abcdef0") is False
    assert len(ops.describe("other").instances) == 1


def test_instances_from_another_launch_template_are_outdated(ops: AsgOps, asg: Any, ec2: Any) -> None:
    first = create_lt(ec2, "first-lt", AMI_OLD)
    create_asg(asg, "workers", {"LaunchTemplateId": first, "Version": "1"}, desired=2)
    second = create_lt(ec2, "second-lt", AMI_OLD)  # same version number, same AMI, other template
    asg.update_auto_scaling_group(
        AutoScalingGroupName="workers", LaunchTemplate={"LaunchTemplateId": second, "Version": "1"}
    )

    state = ops.describe("workers")

    assert state.target_version == "1"
    assert len(outdated(ops, state)) == 2


def test_launch_configuration_groups_compare_image_ids(ops: AsgOps, asg: Any) -> None:
    asg.create_launch_configuration(
        LaunchConfigurationName="lc-old", ImageId=AMI_OLD, InstanceType="t3.medium"
    )
    asg.create_launch_configuration(
        LaunchConfigurationName="lc-new", ImageId=AMI_NEW, InstanceType="t3.medium"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="legacy",
        LaunchConfigurationName="lc-old",
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=2,
        AvailabilityZones=AZS,
    )
    before = ops.describe("legacy")
    assert before.launch_template is None
    assert before.target_image_id == AMI_OLD
    assert all(i.launch_template_id is None for i in before.instances)
    assert outdated(ops, before) == []

    asg.update_auto_scaling_group(AutoScalingGroupName="legacy", LaunchConfigurationName="lc-new")

    after = ops.describe("legacy")
    assert after.target_image_id == AMI_NEW
    assert len(outdated(ops, after)) == 2


def test_is_outdated_never_flags_an_instance_it_cannot_identify() -> None:
    state = AsgState(
        name="g",
        min_size=0,
        max_size=1,
        desired=1,
        launch_template=LaunchTemplateRef(id="lt-1", name="n", version_spec="$Latest"),
        target_version="3",
        target_image_id="ami-new",
        tags={},
        suspended_processes=(),
        instances=(),
        availability_zones=(),
    )
    unknown = AsgInstance("i-1", "us-east-1a", "Pending", "Healthy", None, None, None, None, False)
    by_image = AsgInstance("i-2", "us-east-1a", "InService", "Healthy", None, None, "ami-old", None, False)
    current = AsgInstance("i-3", "us-east-1a", "InService", "Healthy", "lt-1", "3", "ami-old", None, False)
    assert AsgOps.is_outdated(unknown, state) is False
    assert AsgOps.is_outdated(by_image, state) is True
    # With LT tags, the version decides (an image drift within a version is not ours to judge).
    assert AsgOps.is_outdated(current, state) is False


def test_more_than_one_ec2_batch_of_instances(ops: AsgOps, asg: Any, ec2: Any) -> None:
    lt_id = create_lt(ec2, "big-lt")
    create_asg(asg, "big", {"LaunchTemplateId": lt_id, "Version": "1"}, desired=105, max_size=110)

    state = ops.describe("big")

    assert len(state.instances) == 105
    assert all(i.launch_template_version == "1" and i.image_id == AMI_OLD for i in state.instances)


def _described(moto: MotoServer, since: float) -> int:
    return sum(1 for c in moto.calls.calls(since) if c.action == "DescribeInstances")


def test_describing_one_instance_asks_ec2_about_that_one_only(
    clients: dict[str, Any], asg: Any, ec2: Any, moto: MotoServer
) -> None:
    # Given a group of 105 (two EC2 batches when described whole)
    lt_id = create_lt(ec2, "one-lt")
    create_asg(asg, "one", {"LaunchTemplateId": lt_id, "Version": "1"}, desired=105, max_size=110)
    target = AsgOps(clients["autoscaling"], clients["ec2"], facts=FactsCache()).describe("one").instances[7]
    since = time.time()
    # When a step about one node (in a container that has described nothing yet) describes the
    # group for that instance
    state = AsgOps(clients["autoscaling"], clients["ec2"], facts=FactsCache()).describe(
        "one", only=[target.instance_id]
    )
    # Then it gets that instance, as the whole description had it, from one small EC2 call
    assert state.instances == (target,) and state.desired == 105
    assert _described(moto, since) == 1


def test_a_poll_asks_ec2_only_about_instances_launched_since(
    ops: AsgOps, clients: dict[str, Any], asg: Any, ec2: Any, moto: MotoServer
) -> None:
    # Given a group of 105 described once (two EC2 batches)
    lt_id = create_lt(ec2, "poll-lt")
    create_asg(asg, "poll", {"LaunchTemplateId": lt_id, "Version": "1"}, desired=105, max_size=120)
    first = ops.describe("poll")
    # When it surges by 10 and is described again, as a wait for new nodes polls it
    ops.set_capacity("poll", desired=115)
    since = time.time()
    again = ops.describe("poll")
    # Then EC2 was asked once, about the 10 new instances only, and the 105 are as they were
    assert _described(moto, since) == 1
    assert len(again.instances) == 115 and set(first.instances) <= set(again.instances)
    # ... while a container that remembers nothing asks about all 115 (two batches): the control
    since = time.time()
    fresh = AsgOps(clients["autoscaling"], clients["ec2"], facts=FactsCache()).describe("poll")
    assert _described(moto, since) == 2 and fresh.instances == again.instances


def test_facts_of_an_instance_seen_without_its_launch_tags_are_not_remembered() -> None:
    cache = FactsCache(limit=2)
    tagged = [
        {"Key": "aws:ec2launchtemplate:id", "Value": "lt-1"},
        {"Key": "aws:ec2launchtemplate:version", "Value": "3"},
    ]
    bare = InstanceFacts.of({"ImageId": "ami-1", "InstanceType": "m5.large"})
    full = InstanceFacts.of({"ImageId": "ami-1", "InstanceType": "m5.large", "Tags": tagged})
    cache.remember({"i-bare": bare, "i-1": full})
    assert cache.known(["i-bare", "i-1"]) == {"i-1": full}
    # ... and the least recently used is forgotten past the limit
    cache.remember({"i-2": full, "i-3": full})
    assert set(cache.known(["i-1", "i-2", "i-3"])) == {"i-2", "i-3"}


# --- $Latest / $Default ------------------------------------------------------------------------
def test_latest_and_default_resolve_to_numbers(ops: AsgOps, asg: Any, ec2: Any) -> None:
    lt_id = create_lt(ec2, "multi-lt", AMI_OLD)
    add_version(ec2, lt_id, AMI_NEW)
    add_version(ec2, lt_id, AMI_NEWER)
    ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="2")
    create_asg(asg, "latest", {"LaunchTemplateId": lt_id, "Version": "$Latest"}, desired=0)
    create_asg(asg, "default", {"LaunchTemplateName": "multi-lt", "Version": "$Default"}, desired=0)
    create_asg(asg, "implicit", {"LaunchTemplateId": lt_id}, desired=0)
    asg.create_auto_scaling_group(
        AutoScalingGroupName="mixed",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=AZS,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": lt_id, "Version": "$Latest"},
                "Overrides": [{"InstanceType": "t3.medium"}, {"InstanceType": "t3a.medium"}],
            }
        },
    )

    resolved = {name: ops.describe(name) for name in ("latest", "default", "implicit", "mixed")}

    assert {n: (s.target_version, s.target_image_id) for n, s in resolved.items()} == {
        "latest": ("3", AMI_NEWER),
        "default": ("2", AMI_NEW),
        "implicit": ("2", AMI_NEW),
        "mixed": ("3", AMI_NEWER),
    }
    assert resolved["default"].launch_template == LaunchTemplateRef(lt_id, "multi-lt", "$Default")
    assert resolved["implicit"].launch_template is not None
    assert resolved["implicit"].launch_template.version_spec == "$Default"


def test_asgs_following_a_template_are_found_by_version_spec(ops: AsgOps, asg: Any, ec2: Any) -> None:
    lt_id = create_lt(ec2, "shared-lt")
    other = create_lt(ec2, "other-lt")
    create_asg(asg, "follows-latest", {"LaunchTemplateId": lt_id, "Version": "$Latest"}, desired=0)
    create_asg(asg, "follows-default", {"LaunchTemplateName": "shared-lt", "Version": "$Default"}, desired=0)
    create_asg(asg, "pinned", {"LaunchTemplateId": lt_id, "Version": "1"}, desired=0)
    create_asg(asg, "other-latest", {"LaunchTemplateId": other, "Version": "$Latest"}, desired=0)

    # CreateLaunchTemplateVersion event (names the template by id)
    assert ops.asgs_using_launch_template(lt_id, None, {"$Latest"}) == ["follows-latest"]
    # ModifyLaunchTemplate event (names the template by name only)
    assert ops.asgs_using_launch_template(None, "shared-lt", {"$Default"}) == ["follows-default"]
    assert ops.asgs_using_launch_template(lt_id, "shared-lt", {"$Latest", "$Default"}) == [
        "follows-default",
        "follows-latest",
    ]
    with pytest.raises(ValueError, match="id or name"):
        ops.asgs_using_launch_template(None, None, {"$Latest"})


def test_asgs_using_launch_template_reads_every_page(ops: AsgOps, asg: Any, ec2: Any) -> None:
    lt_id = create_lt(ec2, "paged-lt")
    for n in range(52):  # moto, like AWS, returns 50 groups per page
        create_asg(asg, f"pinned-{n:02d}", {"LaunchTemplateId": lt_id, "Version": "1"}, desired=0)
    create_asg(asg, "zz-follows-latest", {"LaunchTemplateId": lt_id, "Version": "$Latest"}, desired=0)

    assert ops.asgs_using_launch_template(lt_id, None, {"$Latest"}) == ["zz-follows-latest"]


# --- errors, processes, tags -------------------------------------------------------------------
def test_unknown_group_is_asg_not_found_everywhere(ops: AsgOps) -> None:
    # moto answers HTTP 500 to SuspendProcesses / CreateOrUpdateTags on an unknown group.
    for call in (
        lambda: ops.describe("ghost"),
        lambda: ops.set_capacity("ghost", desired=1),
        lambda: ops.suspend("ghost", ["AZRebalance"]),
        lambda: ops.resume("ghost", ["AZRebalance"]),
        lambda: ops.put_tags("ghost", {"a": "b"}),
        lambda: ops.delete_tags("ghost", ["a"]),
    ):
        with pytest.raises(AsgNotFoundError, match="ghost"):
            call()


@pytest.mark.parametrize("by", ["LaunchTemplateId", "LaunchTemplateName"])
def test_a_group_whose_launch_template_was_deleted_is_named_not_an_index_error(
    ops: AsgOps, asg: Any, ec2: Any, by: str
) -> None:
    # Given a group whose launch template someone deleted (moto answers an empty list, AWS
    # InvalidLaunchTemplateId.NotFound)
    lt_id = create_lt(ec2, "doomed-lt")
    create_asg(
        asg,
        "orphan",
        {by: lt_id if by == "LaunchTemplateId" else "doomed-lt", "Version": "$Latest"},
        desired=0,
    )
    ec2.delete_launch_template(LaunchTemplateId=lt_id)
    # Then describing it says which template is missing
    with pytest.raises(LaunchTemplateNotFoundError, match="does not exist"):
        ops.describe("orphan")


def test_suspend_and_resume_are_recorded(ops: AsgOps, rolled_lt: str) -> None:
    ops.suspend("workers", ["AZRebalance", "AlarmNotification", "AZRebalance"])
    assert ops.describe("workers").suspended_processes == ("AZRebalance", "AlarmNotification")

    ops.resume("workers", ["AZRebalance"])
    assert ops.describe("workers").suspended_processes == ("AlarmNotification",)


def test_empty_process_lists_never_mean_all_processes(ops: AsgOps, rolled_lt: str) -> None:
    ops.suspend("workers", [])
    assert ops.describe("workers").suspended_processes == ()

    ops.suspend("workers", ["ScheduledActions"])
    ops.resume("workers", [])
    assert ops.describe("workers").suspended_processes == ("ScheduledActions",)


def test_put_and_delete_tags(ops: AsgOps, asg: Any, rolled_lt: str) -> None:
    ops.put_tags("workers", {"eks-rolling/exec-abc/desired": "4", "eks-rolling/exec-abc/max": "6"})
    ops.put_tags("workers", {"eks-rolling/exec-abc/desired": "5"})

    tags = ops.describe("workers").tags
    assert tags["eks-rolling/exec-abc/desired"] == "5"
    assert tags["eks-rolling/exec-abc/max"] == "6"
    raw = asg.describe_tags(Filters=[{"Name": "key", "Values": ["eks-rolling/exec-abc/max"]}])["Tags"]
    assert [t["PropagateAtLaunch"] for t in raw] == [False]

    ops.delete_tags("workers", ["eks-rolling/exec-abc/desired", "eks-rolling/exec-abc/max"])
    assert not any(k.startswith("eks-rolling/exec-abc/") for k in ops.describe("workers").tags)
    assert ops.describe("workers").tags[TAG_OPT_IN] == "true"


def test_pointing_a_group_back_makes_the_new_instances_the_outdated_ones(ops: AsgOps, rolled_lt: str) -> None:
    # Given 4 instances on v1 and 2 surged on v2 (the group's target)
    old = {i.instance_id for i in ops.describe("workers").instances}
    ops.set_capacity("workers", desired=6)
    # When the group is pointed back at v1 (revert_on_alarm)
    assert ops.set_launch_template_version("workers", "1") is True
    state = ops.describe("workers")
    # Then v1 is the target, the v2 instances are outdated and the old ones are not
    assert state.target_version == "1" and state.target_image_id == AMI_OLD
    assert set(outdated(ops, state)) == {i.instance_id for i in state.instances} - old
    assert len(outdated(ops, state)) == 2
    # ... and a retry changes nothing
    assert ops.set_launch_template_version("workers", "1") is False


def test_terminating_an_instance_no_group_holds_is_awss_validation_error(
    ops: AsgOps, asg: Any, rolled_lt: str
) -> None:
    # Given an instance terminated already (a retried call whose first try was served late)
    patch_moto_asg()
    victim = ops.describe("workers").instances[0].instance_id
    asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    # Then terminating it again is AWS's ValidationError, which AsgOps reads as "already gone"
    with pytest.raises(ClientError) as err:
        asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "Instance Id not found" in err.value.response["Error"]["Message"]
    assert ops.describe("workers").desired == 3  # decremented once
    # Control: moto's own method fails on the lookup (HTTP 500 over the wire)
    backend = autoscaling_backends[ACCOUNT]["us-east-1"]
    with pytest.raises(StopIteration):
        AutoScalingBackend.terminate_instance.__wrapped__(backend, victim, True)  # type: ignore[attr-defined]


def test_an_instances_tags_are_looked_up_not_scanned_from_every_resources(
    ops: AsgOps, ec2: Any, rolled_lt: str
) -> None:
    # Given the sandbox's moto, and other tagged resources beside the group's instances
    patch_moto_asg()
    ids = [i.instance_id for i in ops.describe("workers").instances]
    ec2.create_tags(Resources=ids[:1], Tags=[{"Key": "team", "Value": "payments"}])
    ec2.create_tags(Resources=[rolled_lt], Tags=[{"Key": "other", "Value": "resource"}])
    backend = ec2_backends[ACCOUNT]["us-east-1"]
    scans = 0
    describe_tags = backend.describe_tags

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal scans
        scans += 1
        return describe_tags(*args, **kwargs)

    backend.describe_tags = counted
    try:
        # When the instances are described over HTTP
        got = {
            i["InstanceId"]: sorted((t["Key"], t["Value"]) for t in i.get("Tags", []))
            for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
            for i in r["Instances"]
        }
        # Then each has its own tags, and no tag scan ran
        assert scans == 0
        assert ("team", "payments") in got[ids[0]] and ("team", "payments") not in got[ids[1]]
        assert ("aws:ec2launchtemplate:version", "1") in got[ids[1]]
        # ... the same tags as moto's own lookup, which scans every tag of every resource (control)
        moto_own = TaggedEC2Resource.get_tags.__wrapped__  # type: ignore[attr-defined]
        assert got[ids[0]] == sorted((t["key"], t["value"]) for t in moto_own(backend.get_instance(ids[0])))
        assert scans == 1
    finally:
        del backend.describe_tags
