"""The Auto Scaling group as the roll sees it, and the few mutations the roll needs.

"Old vs new" is decided per instance from the EC2 tags `aws:ec2launchtemplate:{id,version}`
that EC2 puts on every instance launched from a launch template (and from ImageId when those are
missing). The ASG's own `Instances[].LaunchTemplate.Version` is not used: moto reports the
group's current version for every instance there.

Every mutation reads the group first: it yields AsgNotFoundError instead of moto's HTTP 500 or
AWS's generic ValidationError, lets repeated calls (Step Functions retries) become no-ops, and
lets capacity be checked against min/max the same way on AWS and on moto (which does not check).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from eks_rolling.aws.clients import aws_errors, error_code
from eks_rolling.errors import AsgNotFoundError, CapacityError, LaunchTemplateNotFoundError

log = logging.getLogger(__name__)

LT_ID_TAG = "aws:ec2launchtemplate:id"
LT_VERSION_TAG = "aws:ec2launchtemplate:version"
LATEST = "$Latest"
DEFAULT = "$Default"
_EC2_BATCH = 100
_ASG_RESOURCE = "auto-scaling-group"


@dataclass(frozen=True)
class LaunchTemplateRef:
    id: str
    name: str
    version_spec: str  # as configured on the ASG: "3", "$Latest" or "$Default"


@dataclass(frozen=True)
class AsgInstance:
    instance_id: str
    az: str
    lifecycle_state: str
    health_status: str
    launch_template_id: str | None  # from EC2 tags, not from the ASG
    launch_template_version: str | None
    image_id: str | None
    instance_type: str | None
    protected_from_scale_in: bool


@dataclass(frozen=True)
class AsgState:
    name: str
    min_size: int
    max_size: int
    desired: int
    launch_template: LaunchTemplateRef | None
    target_version: str | None  # version_spec resolved to a number
    target_image_id: str | None
    tags: dict[str, str]
    suspended_processes: tuple[str, ...]
    instances: tuple[AsgInstance, ...]
    availability_zones: tuple[str, ...]


def launch_template_spec(group: Mapping[str, Any]) -> dict[str, Any] | None:
    """The group's launch template spec, plain or inside a MixedInstancesPolicy."""
    spec = group.get("LaunchTemplate")
    if not spec:
        mip = group.get("MixedInstancesPolicy") or {}
        spec = (mip.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    return dict(spec) if spec else None


def _version_spec(spec: Mapping[str, Any]) -> str:
    # AWS uses the default version when the spec names none.
    return str(spec.get("Version") or DEFAULT)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AsgOps:
    def __init__(self, autoscaling: Any, ec2: Any) -> None:
        self._asg = autoscaling
        self._ec2 = ec2

    # --- reads -------------------------------------------------------------------------------
    def describe(self, name: str) -> AsgState:
        group = self._group(name)
        spec = launch_template_spec(group)
        lt_ref: LaunchTemplateRef | None = None
        target_version: str | None = None
        target_image: str | None = None
        if spec is not None:
            lt_ref, target_version = self._resolve(spec)
            target_image = self._image_of(lt_ref.id, target_version)
        elif group.get("LaunchConfigurationName"):
            target_image = self._launch_configuration_image(group["LaunchConfigurationName"])
        instances = self._instances(group.get("Instances") or [])
        log.info(
            "described ASG %s: desired %s, %d instances, target version %s",
            name,
            group["DesiredCapacity"],
            len(instances),
            target_version,
        )
        return AsgState(
            name=name,
            min_size=int(group["MinSize"]),
            max_size=int(group["MaxSize"]),
            desired=int(group["DesiredCapacity"]),
            launch_template=lt_ref,
            target_version=target_version,
            target_image_id=target_image,
            tags={t["Key"]: t.get("Value", "") for t in group.get("Tags") or []},
            suspended_processes=tuple(
                sorted(p["ProcessName"] for p in group.get("SuspendedProcesses") or [])
            ),
            instances=instances,
            availability_zones=tuple(group.get("AvailabilityZones") or ()),
        )

    def asgs_using_launch_template(
        self, lt_id: str | None, lt_name: str | None, version_specs: set[str]
    ) -> list[str]:
        """Groups whose launch template (by id or name) is configured with one of `version_specs`.

        For ModifyLaunchTemplate ({"$Default"}) and CreateLaunchTemplateVersion ({"$Latest"}),
        whose events do not name the group. Groups pinned to a number are not affected.
        """
        if not lt_id and not lt_name:
            raise ValueError("a launch template id or name is required")
        names: list[str] = []
        with aws_errors():
            for page in self._asg.get_paginator("describe_auto_scaling_groups").paginate():
                for group in page.get("AutoScalingGroups", []):
                    spec = launch_template_spec(group)
                    if spec is None:
                        continue
                    same = (lt_id is not None and spec.get("LaunchTemplateId") == lt_id) or (
                        lt_name is not None and spec.get("LaunchTemplateName") == lt_name
                    )
                    if same and _version_spec(spec) in version_specs:
                        names.append(group["AutoScalingGroupName"])
        log.info(
            "%d ASGs follow launch template %s with %s", len(names), lt_id or lt_name, sorted(version_specs)
        )
        return sorted(names)

    @staticmethod
    def is_outdated(instance: AsgInstance, state: AsgState) -> bool:
        """Whether `instance` was launched from something other than the group's target.

        Unknown (no LT tags and no image id, e.g. not yet visible to EC2) counts as not
        outdated: the roll never replaces what it cannot identify.
        """
        lt = state.launch_template
        if instance.launch_template_id is not None and lt is not None:
            if instance.launch_template_id != lt.id:
                return True
            return (
                state.target_version is not None and instance.launch_template_version != state.target_version
            )
        if instance.image_id is not None and state.target_image_id is not None:
            return instance.image_id != state.target_image_id
        return False

    # --- writes ------------------------------------------------------------------------------
    def set_capacity(self, name: str, *, desired: int, max_size: int | None = None) -> None:
        """Set desired capacity (absolute, so retries are harmless), raising max in the same call."""
        group = self._group(name)
        new_max = int(group["MaxSize"]) if max_size is None else max_size
        min_size = int(group["MinSize"])
        if not min_size <= desired <= new_max:
            raise CapacityError(f"ASG {name}: desired {desired} is outside min {min_size} / max {new_max}")
        if int(group["DesiredCapacity"]) == desired and int(group["MaxSize"]) == new_max:
            log.info("ASG %s already at desired %d / max %d", name, desired, new_max)
            return
        params: dict[str, Any] = {"AutoScalingGroupName": name, "DesiredCapacity": desired}
        if max_size is not None:
            params["MaxSize"] = max_size
        try:
            with aws_errors():
                self._asg.update_auto_scaling_group(**params)
        except ClientError as exc:
            if error_code(exc) == "ValidationError":
                raise CapacityError(f"ASG {name}: {_message(exc)}") from exc
            raise
        log.info(
            "ASG %s desired %s -> %d, max %s -> %d",
            name,
            group["DesiredCapacity"],
            desired,
            group["MaxSize"],
            new_max,
        )

    def suspend(self, name: str, processes: Iterable[str]) -> None:
        # An empty ScalingProcesses list means "all processes" to the API: never send one.
        wanted = sorted(set(processes))
        if not wanted:
            return
        self._group(name)
        with aws_errors():
            self._asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=wanted)
        log.info("ASG %s: suspended %s", name, wanted)

    def resume(self, name: str, processes: Iterable[str]) -> None:
        # Same trap as suspend: an empty list would resume processes someone else suspended.
        wanted = sorted(set(processes))
        if not wanted:
            return
        self._group(name)
        with aws_errors():
            self._asg.resume_processes(AutoScalingGroupName=name, ScalingProcesses=wanted)
        log.info("ASG %s: resumed %s", name, wanted)

    def terminate(self, instance_id: str, *, decrement: bool = True, asg_name: str | None = None) -> bool:
        """TerminateInstanceInAutoScalingGroup; False (and nothing done) if already gone.

        "Gone" is: not in any group (or not in `asg_name` when given), or already
        Terminating/Terminated/Detaching. So a retried step never terminates twice.
        """
        with aws_errors():
            resp = self._asg.describe_auto_scaling_instances(InstanceIds=[instance_id])
        found = resp["AutoScalingInstances"]
        if not found:
            log.info("instance %s is not in any ASG; nothing to terminate", instance_id)
            return False
        member = found[0]
        if asg_name is not None and member["AutoScalingGroupName"] != asg_name:
            log.warning(
                "instance %s belongs to ASG %s, not %s", instance_id, member["AutoScalingGroupName"], asg_name
            )
            return False
        if str(member["LifecycleState"]).startswith(("Terminat", "Detach")):
            log.info("instance %s already %s", instance_id, member["LifecycleState"])
            return False
        try:
            with aws_errors():
                self._asg.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement
                )
        except ClientError as exc:
            if error_code(exc) != "ValidationError":
                raise
            message = _message(exc).lower()
            if "min size" in message:
                raise CapacityError(f"cannot terminate {instance_id}: {_message(exc)}") from exc
            if "not found" in message or "terminat" in message:
                return False  # lost a race with another terminate: same outcome
            raise
        log.info("terminating instance %s (decrement=%s)", instance_id, decrement)
        return True

    def put_tags(self, name: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        self._group(name)
        with aws_errors():
            self._asg.create_or_update_tags(
                Tags=[
                    {
                        "ResourceId": name,
                        "ResourceType": _ASG_RESOURCE,
                        "Key": key,
                        "Value": value,
                        "PropagateAtLaunch": False,  # bookkeeping, not for instances
                    }
                    for key, value in sorted(tags.items())
                ]
            )
        log.info("ASG %s: put %d tags", name, len(tags))

    def delete_tags(self, name: str, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys))
        if not wanted:
            return
        self._group(name)
        with aws_errors():
            self._asg.delete_tags(
                Tags=[{"ResourceId": name, "ResourceType": _ASG_RESOURCE, "Key": key} for key in wanted]
            )
        log.info("ASG %s: deleted %d tags", name, len(wanted))

    # --- helpers -----------------------------------------------------------------------------
    def _group(self, name: str) -> dict[str, Any]:
        with aws_errors():
            groups = self._asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not groups:
            raise AsgNotFoundError(f"Auto Scaling group {name!r} does not exist")
        group: dict[str, Any] = groups[0]
        return group

    def _resolve(self, spec: Mapping[str, Any]) -> tuple[LaunchTemplateRef, str]:
        lt_id, lt_name = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName")
        query = {"LaunchTemplateIds": [lt_id]} if lt_id else {"LaunchTemplateNames": [lt_name]}
        try:
            with aws_errors():
                found = self._ec2.describe_launch_templates(**query)["LaunchTemplates"]
        except ClientError as exc:
            # AWS: InvalidLaunchTemplateId.NotFound / InvalidLaunchTemplateName.NotFoundException;
            # moto answers an empty list.
            if not error_code(exc).startswith("InvalidLaunchTemplate"):
                raise
            found = []
        if not found:
            raise LaunchTemplateNotFoundError(f"launch template {lt_id or lt_name} does not exist (deleted?)")
        lt = found[0]
        version_spec = _version_spec(spec)
        if version_spec == LATEST:
            target = str(lt["LatestVersionNumber"])
        elif version_spec == DEFAULT:
            target = str(lt["DefaultVersionNumber"])
        else:
            target = version_spec
        ref = LaunchTemplateRef(
            id=lt["LaunchTemplateId"], name=lt["LaunchTemplateName"], version_spec=version_spec
        )
        return ref, target

    def _image_of(self, lt_id: str, version: str) -> str | None:
        # ResolveAlias turns "resolve:ssm:<param>" into the AMI id instances actually carry.
        with aws_errors():
            versions = self._ec2.describe_launch_template_versions(
                LaunchTemplateId=lt_id, Versions=[version], ResolveAlias=True
            )["LaunchTemplateVersions"]
        if not versions:
            return None
        image: str | None = (versions[0].get("LaunchTemplateData") or {}).get("ImageId")
        return image

    def _launch_configuration_image(self, lc_name: str) -> str | None:
        with aws_errors():
            resp = self._asg.describe_launch_configurations(LaunchConfigurationNames=[lc_name])
        lcs = resp["LaunchConfigurations"]
        image: str | None = lcs[0].get("ImageId") if lcs else None
        return image

    def _instances(self, raw: list[dict[str, Any]]) -> tuple[AsgInstance, ...]:
        ec2_info = self._ec2_instances([i["InstanceId"] for i in raw])
        out: list[AsgInstance] = []
        for item in raw:
            iid = item["InstanceId"]
            info = ec2_info.get(iid, {})
            tags = {t["Key"]: t.get("Value", "") for t in info.get("Tags") or []}
            out.append(
                AsgInstance(
                    instance_id=iid,
                    az=item.get("AvailabilityZone", ""),
                    lifecycle_state=item.get("LifecycleState", ""),
                    health_status=item.get("HealthStatus", ""),
                    launch_template_id=tags.get(LT_ID_TAG),
                    launch_template_version=tags.get(LT_VERSION_TAG),
                    image_id=info.get("ImageId"),
                    instance_type=item.get("InstanceType") or info.get("InstanceType"),
                    protected_from_scale_in=bool(item.get("ProtectedFromScaleIn", False)),
                )
            )
        return tuple(out)

    def _ec2_instances(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        # A filter rather than InstanceIds: an id EC2 does not know yet (eventual consistency
        # right after launch) is simply absent instead of failing the whole call.
        found: dict[str, dict[str, Any]] = {}
        paginator = self._ec2.get_paginator("describe_instances")
        for batch in _chunks(ids, _EC2_BATCH):
            with aws_errors():
                for page in paginator.paginate(Filters=[{"Name": "instance-id", "Values": batch}]):
                    for reservation in page.get("Reservations", []):
                        for inst in reservation.get("Instances", []):
                            found[inst["InstanceId"]] = inst
        if len(found) < len(ids):
            log.info("%d of %d ASG instances not yet visible in EC2", len(ids) - len(found), len(ids))
        return found


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))
