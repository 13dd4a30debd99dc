"""What started the execution: a manual request or a CloudTrail event delivered by EventBridge.

Everything is normalised into one `TriggerRequest`. The event only says which group or launch
template changed; whether anything is outdated is always re-derived from ASG/EC2 state later
(events are best effort, and the launch template events do not name a group).

Pure pydantic: no boto3 here, so the parser can be tested and reused anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from eks_rolling.errors import InvalidInputError
from eks_rolling.models import RollScope
from eks_rolling.planning.selectors import parse_selector

TriggerKind = Literal[
    "manual", "update_asg", "modify_launch_template", "create_launch_template_version", "scheduled"
]

_M = TypeVar("_M", bound=BaseModel)

_EXPECTED = (
    'expected a manual request {"asgName": "<name>", "dryRun": false} or an EventBridge '
    '"AWS API Call via CloudTrail" event for UpdateAutoScalingGroup with a launch template, '
    "ModifyLaunchTemplate or CreateLaunchTemplateVersion, or an EventBridge Scheduled Event (drift check)"
)


@dataclass(frozen=True)
class Home:
    """The account and region whose groups this tool rolls; None where unknown (not checked)."""

    account: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, execution_arn: str, region: str | None) -> Home:
        """The account from this execution's ARN (arn:aws:states:<region>:<account>:execution:..),
        the region the tool's clients act in."""
        parts = execution_arn.split(":")
        account = parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4].isdigit() else None
        return cls(account=account, region=region)


def _asg_name_chars(value: str) -> str:
    # Auto Scaling's own constraint on names: no control characters but tab, CR and LF (pydantic
    # already refuses lone surrogates). AWS answers such a name with a generic ValidationError.
    for i, ch in enumerate(value):
        code = ord(ch)
        if (code < 0x20 and ch not in "\t\r\n") or code in (0xFFFE, 0xFFFF):
            raise ValueError(
                f"character U+{code:04X} at position {i} is not allowed in an Auto Scaling group name"
            )
    return value


# What Auto Scaling accepts as a group name (1-255 characters, the characters above).
AsgName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_asg_name_chars)]
_NAME: TypeAdapter[str] = TypeAdapter(AsgName)

_ASG_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):autoscaling:(?P<region>[\w-]+):(?P<account>\d{12}):"
    r"autoScalingGroup:[^:]*:autoScalingGroupName/(?P<name>.+)$",
    re.DOTALL,
)


def _asg_name_from_arn(value: str, home: Home) -> str:
    """A group given by ARN: its name, once the ARN is known to be of this account and region."""
    m = _ASG_ARN.match(value)
    if m is None:
        raise InvalidInputError(
            "asgName looks like an ARN but is not an Auto Scaling group ARN "
            "(arn:aws:autoscaling:<region>:<account>:autoScalingGroup:<id>:autoScalingGroupName/<name>)"
        )
    _same_home(home, account=m["account"], region=m["region"], what=f"Auto Scaling group {m['name']!r}")
    return m["name"]


def _same_home(home: Home, *, account: str | None, region: str | None, what: str) -> None:
    # Never act on a same-named group here for a change made in another account or region.
    if home.account and account and account != home.account:
        raise InvalidInputError(f"{what} is in account {account}; this roller runs in account {home.account}")
    if home.region and region and region != home.region:
        raise InvalidInputError(f"{what} is in region {region}; this roller runs in region {home.region}")


class TriggerRequest(BaseModel):
    """The normalised trigger. `asg_names` is empty for launch template events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: TriggerKind
    asg_names: tuple[str, ...] = ()
    launch_template_id: str | None = None
    launch_template_name: str | None = None
    dry_run: bool = False
    event_id: str | None = None
    scope: RollScope | None = None  # a manual start's


# --- manual ------------------------------------------------------------------------------------
class ManualRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # An ARN is longer than a name may be: it is checked and reduced to the name in parse_trigger.
    asg_name: str = Field(alias="asgName", min_length=1, max_length=1600, pattern=r"^\S(.*\S)?$")
    dry_run: StrictBool = Field(False, alias="dryRun")
    # Scope of this roll (labels.py and the README's "Operator controls"); selectors in kubectl syntax.
    node_selector: str = Field("", alias="nodeSelector", max_length=4096)
    instance_ids: tuple[str, ...] = Field((), alias="instanceIds", max_length=1000)
    exclude_selector: str = Field("", alias="excludeSelector", max_length=4096)

    @field_validator("node_selector", "exclude_selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        parse_selector(v)  # SelectorError is a ValueError: the request is refused, naming it
        return v


# --- CloudTrail pieces (only the fields we use; AWS adds fields freely, so extras are ignored) ---
class _Lenient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _require_id_or_name(lt_id: str | None, lt_name: str | None, where: str) -> None:
    if not lt_id and not lt_name:
        raise ValueError(f"{where} names neither a launch template id nor a name")


class AsgLaunchTemplateSpec(_Lenient):
    """Auto Scaling's camelCase LaunchTemplateSpecification as CloudTrail records it."""

    launch_template_id: str | None = Field(None, alias="launchTemplateId")
    launch_template_name: str | None = Field(None, alias="launchTemplateName")
    version: str | int | None = None

    @model_validator(mode="after")
    def _named(self) -> AsgLaunchTemplateSpec:
        _require_id_or_name(self.launch_template_id, self.launch_template_name, "launchTemplate")
        return self


class MixedLaunchTemplate(_Lenient):
    launch_template_specification: AsgLaunchTemplateSpec | None = Field(
        None, alias="launchTemplateSpecification"
    )


class MixedInstancesPolicy(_Lenient):
    launch_template: MixedLaunchTemplate | None = Field(None, alias="launchTemplate")


class UpdateAutoScalingGroupParams(_Lenient):
    auto_scaling_group_name: AsgName = Field(alias="autoScalingGroupName")
    launch_template: AsgLaunchTemplateSpec | None = Field(None, alias="launchTemplate")
    mixed_instances_policy: MixedInstancesPolicy | None = Field(None, alias="mixedInstancesPolicy")

    def spec(self) -> AsgLaunchTemplateSpec | None:
        if self.launch_template is not None:
            return self.launch_template
        mip = self.mixed_instances_policy
        if mip is not None and mip.launch_template is not None:
            return mip.launch_template.launch_template_specification
        return None


class Ec2LaunchTemplateTarget(_Lenient):
    """EC2 wraps request parameters in `<Action>Request` with PascalCase names."""

    launch_template_id: str | None = Field(None, alias="LaunchTemplateId")
    launch_template_name: str | None = Field(None, alias="LaunchTemplateName")


class Ec2LaunchTemplateResult(_Lenient):
    """camelCase launchTemplate / launchTemplateVersion from the response, used to fill gaps."""

    launch_template_id: str | None = Field(None, alias="launchTemplateId")
    launch_template_name: str | None = Field(None, alias="launchTemplateName")


class ModifyLaunchTemplateParams(_Lenient):
    request: Ec2LaunchTemplateTarget = Field(alias="ModifyLaunchTemplateRequest")


class CreateLaunchTemplateVersionParams(_Lenient):
    request: Ec2LaunchTemplateTarget = Field(alias="CreateLaunchTemplateVersionRequest")


class CloudTrailDetail(_Lenient):
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    event_id: str | None = Field(None, alias="eventID")
    aws_region: str | None = Field(None, alias="awsRegion")
    recipient_account_id: str | None = Field(None, alias="recipientAccountId")
    error_code: str | None = Field(None, alias="errorCode")
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(None, alias="responseElements")


class CloudTrailEvent(_Lenient):
    """The EventBridge envelope around a CloudTrail record."""

    version: str
    id: str = Field(min_length=1)
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    source: Literal["aws.autoscaling", "aws.ec2"]
    account: str | None = None
    region: str | None = None
    detail: CloudTrailDetail


class ScheduledEvent(_Lenient):
    """EventBridge's "Scheduled Event" from a schedule rule: the drift check. An AMI behind a
    `resolve:ssm:` alias changes with no CloudTrail event, so only a schedule notices it."""

    version: str
    id: str = Field(min_length=1)
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    source: Literal["aws.events"]
    resources: list[str] = Field(default_factory=list)


# --- parsing -----------------------------------------------------------------------------------
def _summary(exc: ValidationError) -> str:
    # Field paths and reasons only: never echo the input back (it may be large or sensitive).
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _validate(model: type[_M], data: Any, what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid {what} ({_summary(exc)}); {_EXPECTED}") from exc


def _response_template(detail: CloudTrailDetail, response_key: str, item_key: str) -> Ec2LaunchTemplateResult:
    body = (detail.response_elements or {}).get(response_key) or {}
    item = body.get(item_key) if isinstance(body, Mapping) else None
    if not isinstance(item, Mapping):
        return Ec2LaunchTemplateResult()
    try:
        return Ec2LaunchTemplateResult.model_validate(item)
    except ValidationError:
        return Ec2LaunchTemplateResult()


def _update_asg(event: CloudTrailEvent) -> TriggerRequest:
    params = _validate(
        UpdateAutoScalingGroupParams, event.detail.request_parameters, "UpdateAutoScalingGroup"
    )
    spec = params.spec()
    if spec is None:
        raise InvalidInputError(
            f"UpdateAutoScalingGroup on {params.auto_scaling_group_name} changed no launch template "
            "(capacity-only update): nothing to roll; expected requestParameters.launchTemplate or "
            "mixedInstancesPolicy.launchTemplate.launchTemplateSpecification"
        )
    return TriggerRequest(
        kind="update_asg",
        asg_names=(params.auto_scaling_group_name,),
        launch_template_id=spec.launch_template_id,
        launch_template_name=spec.launch_template_name,
        event_id=event.id,
    )


def _ec2_event(
    event: CloudTrailEvent,
    kind: TriggerKind,
    params_model: type[ModifyLaunchTemplateParams] | type[CreateLaunchTemplateVersionParams],
    response_key: str,
    item_key: str,
) -> TriggerRequest:
    params = _validate(params_model, event.detail.request_parameters, event.detail.event_name)
    result = _response_template(event.detail, response_key, item_key)
    # The request may name the template either way; the response (when recorded) has both.
    lt_id = params.request.launch_template_id or result.launch_template_id
    lt_name = params.request.launch_template_name or result.launch_template_name
    if not lt_id and not lt_name:
        raise InvalidInputError(f"{event.detail.event_name} names no launch template; {_EXPECTED}")
    return TriggerRequest(
        kind=kind, launch_template_id=lt_id, launch_template_name=lt_name, event_id=event.id
    )


def _modify_launch_template(event: CloudTrailEvent) -> TriggerRequest:
    return _ec2_event(
        event,
        "modify_launch_template",
        ModifyLaunchTemplateParams,
        "ModifyLaunchTemplateResponse",
        "launchTemplate",
    )


def _create_launch_template_version(event: CloudTrailEvent) -> TriggerRequest:
    return _ec2_event(
        event,
        "create_launch_template_version",
        CreateLaunchTemplateVersionParams,
        "CreateLaunchTemplateVersionResponse",
        "launchTemplateVersion",
    )


# eventName -> (EventBridge source, CloudTrail eventSource, parser)
_HANDLERS: dict[str, tuple[str, str, Callable[[CloudTrailEvent], TriggerRequest]]] = {
    "UpdateAutoScalingGroup": ("aws.autoscaling", "autoscaling.amazonaws.com", _update_asg),
    "ModifyLaunchTemplate": ("aws.ec2", "ec2.amazonaws.com", _modify_launch_template),
    "CreateLaunchTemplateVersion": ("aws.ec2", "ec2.amazonaws.com", _create_launch_template_version),
}


def _parse_event(raw: Mapping[str, Any], home: Home) -> TriggerRequest:
    event = _validate(CloudTrailEvent, raw, "EventBridge event")
    detail = event.detail
    # The envelope says where the event was emitted, the record where the call was made (a
    # cross-account or cross-region event bus delivers both); either elsewhere is not ours.
    for account, region in ((event.account, event.region), (detail.recipient_account_id, detail.aws_region)):
        _same_home(home, account=account, region=region, what=f"the {detail.event_name} event")
    handler = _HANDLERS.get(detail.event_name)
    if handler is None:
        raise InvalidInputError(f"unsupported CloudTrail event {detail.event_name!r}; {_EXPECTED}")
    source, event_source, parse = handler
    if event.source != source or detail.event_source != event_source:
        raise InvalidInputError(
            f"{detail.event_name} must come from {source}/{event_source}, "
            f"not {event.source}/{detail.event_source}"
        )
    if detail.error_code:
        # CloudTrail also records calls that failed; nothing changed, so nothing to roll.
        raise InvalidInputError(f"{detail.event_name} failed with {detail.error_code}: nothing changed")
    return parse(event)


def _manual(raw: Mapping[str, Any], home: Home) -> TriggerRequest:
    manual = _validate(ManualRequest, raw, "manual request")
    name = manual.asg_name
    if name.startswith("arn:"):
        name = _asg_name_from_arn(name, home)
    try:
        _NAME.validate_python(name)
    except ValidationError as exc:
        reasons = "; ".join(err["msg"] for err in exc.errors())
        raise InvalidInputError(f"invalid manual request (asgName: {reasons}); {_EXPECTED}") from exc
    scope = None
    if manual.node_selector or manual.instance_ids or manual.exclude_selector:
        scope = RollScope(
            node_selector=manual.node_selector,
            instance_ids=list(manual.instance_ids),
            exclude_selector=manual.exclude_selector,
        )
    return TriggerRequest(kind="manual", asg_names=(name,), dry_run=manual.dry_run, scope=scope)


def parse_trigger(raw: Any, home: Home | None = None) -> TriggerRequest:
    """Normalise a manual request or a CloudTrail EventBridge event; InvalidInputError otherwise.
    With `home`, an event or ARN of another account or region is refused too."""
    home = home or Home()
    if not isinstance(raw, Mapping):
        kind = "null" if raw is None else type(raw).__name__
        raise InvalidInputError(f"input is a {kind}, not an object; {_EXPECTED}")
    if raw.get("detail-type") == "Scheduled Event":
        scheduled = _validate(ScheduledEvent, raw, "Scheduled Event")
        return TriggerRequest(kind="scheduled", event_id=scheduled.id)
    if "detail" in raw or "detail-type" in raw:
        return _parse_event(raw, home)
    if "asgName" in raw:
        return _manual(raw, home)
    raise InvalidInputError(_EXPECTED)
