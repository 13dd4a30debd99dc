"""The Auto Scaling group as the roll sees it, and the few mutations the roll needs.

"Old vs new" is decided per instance from the EC2 tags `aws:ec2launchtemplate:{id,version}`
that EC2 puts on every instance launched from a launch template (and from ImageId when those are
missing). The ASG's own `Instances[].LaunchTemplate.Version` is not used: moto reports the
group's current version for every instance there.

The target an instance is compared with is the launch template of its instance type: a
MixedInstancesPolicy override may name its own (one per architecture in a mixed x86/arm64 group).
A template whose ImageId is a `resolve:ssm:` alias changes AMI with no new template version and
no CloudTrail event, so the alias is resolved now (SSM GetParameter) and compared with each
instance's actual ImageId as well.

Every mutation reads the group first: it yields AsgNotFoundError instead of moto's HTTP 500 or
AWS's generic ValidationError, lets repeated calls (Step Functions retries) become no-ops, and
lets capacity be checked against min/max the same way on AWS and on moto (which does not check).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from eks_rolling.aws.clients import aws_errors, error_code
from eks_rolling.aws.instance_facts import FACTS, UNKNOWN, FactsCache, InstanceFacts
from eks_rolling.errors import AmiAliasError, AsgNotFoundError, CapacityError, LaunchTemplateNotFoundError

log = logging.getLogger(__name__)

LATEST = "$Latest"
DEFAULT = "$Default"
_EC2_BATCH = 100
SSM_ALIAS = "resolve:ssm:"
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
class LaunchTarget:
    """What an instance should have been launched from."""

    launch_template: LaunchTemplateRef | None
    version: str | None  # version_spec resolved to a number
    image_id: str | None  # the AMI, an SSM alias resolved
    image_alias: str | None = None  # "resolve:ssm:<parameter>" when the template names one
    instance_type: str | None = None  # the template's InstanceType, if it names one


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
    image_alias: str | None = None  # the top-level template's `resolve:ssm:` alias, if any
    overrides: tuple[tuple[str, LaunchTarget], ...] = ()  # instance type -> its override's target
    target_instance_type: str | None = None  # what new instances launch as, when one type is named

    def target_for(self, instance_type: str | None) -> LaunchTarget:
        """The target of an instance type: its MixedInstancesPolicy override's own launch
        template when it has one, else the group's."""
        for itype, target in self.overrides:
            if itype == instance_type:
                return target
        return LaunchTarget(self.launch_template, self.target_version, self.target_image_id, self.image_alias)


def launch_template_spec(group: Mapping[str, Any]) -> dict[str, Any] | None:
    """The group's launch template spec, plain or inside a MixedInstancesPolicy."""
    spec = group.get("LaunchTemplate")
    if not spec:
        mip = group.get("MixedInstancesPolicy") or {}
        spec = (mip.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    return dict(spec) if spec else None


def override_specs(group: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(instance type, launch template spec) of each MixedInstancesPolicy override that names
    its own template. Overrides by InstanceRequirements name no type: they use the group's."""
    mip = group.get("MixedInstancesPolicy") or {}
    out = []
    for o in (mip.get("LaunchTemplate") or {}).get("Overrides") or []:
        spec = o.get("LaunchTemplateSpecification")
        if spec and o.get("InstanceType"):
            out.append((str(o["InstanceType"]), dict(spec)))
    return out


def _same_template(spec: Mapping[str, Any], lt_id: str | None, lt_name: str | None) -> bool:
    return (lt_id is not None and spec.get("LaunchTemplateId") == lt_id) or (
        lt_name is not None and spec.get("LaunchTemplateName") == lt_name
    )


def _version_spec(spec: Mapping[str, Any]) -> str:
    # AWS uses the default version when the spec names none.
    return str(spec.get("Version") or DEFAULT)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AsgOps:
    def __init__(self, autoscaling: Any, ec2: Any, ssm: Any = None, *, facts: FactsCache = FACTS) -> None:
        self._asg = autoscaling
        self._ec2 = ec2
        self._ssm = ssm  # only needed for templates whose ImageId is a `resolve:ssm:` alias
        self._facts = facts

    # --- reads -------------------------------------------------------------------------------
    def describe(self, name: str, *, only: Collection[str] | None = None) -> AsgState:
        """The group, its launch targets and its instances; with `only`, just those instances
        (a step about one node need not describe a thousand in EC2)."""
        group = self._group(name)
        spec = launch_template_spec(group)
        top = LaunchTarget(None, None, None)
        if spec is not None:
            top = self._target(spec)
        elif group.get("LaunchConfigurationName"):
            top = LaunchTarget(None, None, self._launch_configuration_image(group["LaunchConfigurationName"]))
        overrides = tuple((itype, self._target(o)) for itype, o in override_specs(group))
        raw = group.get("Instances") or []
        if only is not None:
            wanted = set(only)
            raw = [i for i in raw if i["InstanceId"] in wanted]
        instances = self._instances(raw)
        log.info(
            "described ASG %s: desired %s, %d instances, target version %s",
            name,
            group["DesiredCapacity"],
            len(instances),
            top.version,
        )
        return AsgState(
            name=name,
            min_size=int(group["MinSize"]),
            max_size=int(group["MaxSize"]),
            desired=int(group["DesiredCapacity"]),
            launch_template=top.launch_template,
            target_version=top.version,
            target_image_id=top.image_id,
            tags={t["Key"]: t.get("Value", "") for t in group.get("Tags") or []},
            suspended_processes=tuple(
                sorted(p["ProcessName"] for p in group.get("SuspendedProcesses") or [])
            ),
            instances=instances,
            availability_zones=tuple(group.get("AvailabilityZones") or ()),
            image_alias=top.image_alias,
            overrides=overrides,
            target_instance_type=None if overrides else top.instance_type,
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
                    top = launch_template_spec(group)
                    specs = ([top] if top else []) + [o for _, o in override_specs(group)]
                    if any(
                        _same_template(spec, lt_id, lt_name) and _version_spec(spec) in version_specs
                        for spec in specs
                    ):
                        names.append(group["AutoScalingGroupName"])
        log.info(
            "%d ASGs follow launch template %s with %s", len(names), lt_id or lt_name, sorted(version_specs)
        )
        return sorted(names)

    def tags(self, name: str) -> dict[str, str]:
        return {t["Key"]: t.get("Value", "") for t in self._group(name).get("Tags") or []}

    def opted_in(self, tag_key: str, tag_value: str) -> list[str]:
        """Groups carrying the opt-in tag (for the scheduled drift check)."""
        names: list[str] = []
        with aws_errors():
            for page in self._asg.get_paginator("describe_auto_scaling_groups").paginate(
                Filters=[{"Name": f"tag:{tag_key}", "Values": [tag_value]}]
            ):
                names += [g["AutoScalingGroupName"] for g in page.get("AutoScalingGroups", [])]
        return sorted(names)

    @staticmethod
    def is_outdated(instance: AsgInstance, state: AsgState) -> bool:
        """Whether `instance` was launched from something other than its target: the launch
        template of its instance type, that template's version and, for an SSM alias, the AMI
        the alias names now.

        Unknown (no LT tags and no image id, e.g. not yet visible to EC2) counts as not
        outdated: the roll never replaces what it cannot identify.
        """
        target = state.target_for(instance.instance_type)
        lt = target.launch_template
        if instance.launch_template_id is not None and lt is not None:
            if instance.launch_template_id != lt.id:
                return True
            if target.version is not None and instance.launch_template_version != target.version:
                return True
            # Same template version, yet an alias may point at a newer AMI since launch.
            return bool(
                target.image_alias
                and instance.image_id is not None
                and target.image_id is not None
                and instance.image_id != target.image_id
            )
        if instance.image_id is not None and target.image_id is not None:
            return instance.image_id != target.image_id
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

    def set_launch_template_version(self, name: str, version: str) -> bool:
        """Point the group at `version` of its own launch template (plain or in its
        MixedInstancesPolicy; per-type overrides are left as they are). False: already there."""
        group = self._group(name)
        spec = launch_template_spec(group)
        if spec is None:
            raise LaunchTemplateNotFoundError(f"ASG {name} has no launch template to point back")
        if str(spec.get("Version")) == version:
            return False
        ref = {k: spec[k] for k in ("LaunchTemplateId",) if k in spec} or {
            "LaunchTemplateName": spec["LaunchTemplateName"]
        }
        params: dict[str, Any] = {"AutoScalingGroupName": name}
        if group.get("LaunchTemplate"):
            params["LaunchTemplate"] = {**ref, "Version": version}
        else:
            params["MixedInstancesPolicy"] = {
                "LaunchTemplate": {"LaunchTemplateSpecification": {**ref, "Version": version}}
            }
        with aws_errors():
            self._asg.update_auto_scaling_group(**params)
        log.info("ASG %s launch template version %s -> %s", name, spec.get("Version"), version)
        return True

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

    def _target(self, spec: Mapping[str, Any]) -> LaunchTarget:
        ref, version = self._resolve(spec)
        data = self._template_data(ref.id, version)
        image: str | None = data.get("ImageId")
        itype: str | None = data.get("InstanceType")
        if image is not None and image.startswith(SSM_ALIAS):
            return LaunchTarget(ref, version, self._resolve_alias(image, ref), image, itype)
        return LaunchTarget(ref, version, image, instance_type=itype)

    def _template_data(self, lt_id: str, version: str) -> dict[str, Any]:
        # As written in the template: a `resolve:ssm:` alias stays visible (ResolveAlias would hide it).
        with aws_errors():
            versions = self._ec2.describe_launch_template_versions(
                LaunchTemplateId=lt_id, Versions=[version]
            )["LaunchTemplateVersions"]
        return dict(versions[0].get("LaunchTemplateData") or {}) if versions else {}

    def _resolve_alias(self, alias: str, ref: LaunchTemplateRef) -> str:
        """The AMI a `resolve:ssm:<name>[:version|:label]` alias names now; GetParameter takes
        the same selector suffix."""
        name = alias[len(SSM_ALIAS) :]
        if self._ssm is None:
            raise AmiAliasError(f"launch template {ref.name} uses {alias} but no SSM client was given")
        try:
            with aws_errors():
                value = str(self._ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as exc:
            raise AmiAliasError(
                f"launch template {ref.name}: cannot resolve {alias} ({error_code(exc)}: {_message(exc)})"
            ) from exc
        if not value.startswith("ami-"):
            raise AmiAliasError(f"launch template {ref.name}: {alias} holds {value[:40]!r}, not an AMI id")
        log.info("launch template %s: %s is %s", ref.name, alias, value)
        return value

    def _launch_configuration_image(self, lc_name: str) -> str | None:
        with aws_errors():
            resp = self._asg.describe_launch_configurations(LaunchConfigurationNames=[lc_name])
        lcs = resp["LaunchConfigurations"]
        image: str | None = lcs[0].get("ImageId") if lcs else None
        return image

    def _instances(self, raw: list[dict[str, Any]]) -> tuple[AsgInstance, ...]:
        facts = self._ec2_facts([i["InstanceId"] for i in raw])
        out: list[AsgInstance] = []
        for item in raw:
            iid = item["InstanceId"]
            f = facts.get(iid, UNKNOWN)
            out.append(
                AsgInstance(
                    instance_id=iid,
                    az=item.get("AvailabilityZone", ""),
                    lifecycle_state=item.get("LifecycleState", ""),
                    health_status=item.get("HealthStatus", ""),
                    launch_template_id=f.launch_template_id,
                    launch_template_version=f.launch_template_version,
                    image_id=f.image_id,
                    instance_type=item.get("InstanceType") or f.instance_type,
                    protected_from_scale_in=bool(item.get("ProtectedFromScaleIn", False)),
                )
            )
        return tuple(out)

    def _ec2_facts(self, ids: list[str]) -> dict[str, InstanceFacts]:
        """EC2's facts of `ids`: remembered ones from the cache, the rest described."""
        found = self._facts.known(ids)
        unknown = [i for i in ids if i not in found]
        # A filter rather than InstanceIds: an id EC2 does not know yet (eventual consistency
        # right after launch) is simply absent instead of failing the whole call.
        described: dict[str, InstanceFacts] = {}
        paginator = self._ec2.get_paginator("describe_instances")
        for batch in _chunks(unknown, _EC2_BATCH):
            with aws_errors():
                for page in paginator.paginate(Filters=[{"Name": "instance-id", "Values": batch}]):
                    for reservation in page.get("Reservations", []):
                        for inst in reservation.get("Instances", []):
                            described[inst["InstanceId"]] = InstanceFacts.of(inst)
        self._facts.remember(described)
        if len(described) < len(unknown):
            log.info("%d of %d ASG instances not yet visible in EC2", len(unknown) - len(described), len(ids))
        return found | described


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))
