"""What started the execution: a manual request or a CloudTrail event delivered by EventBridge.

Everything is normalised into one `TriggerRequest`. The event only says which group or launch
template changed; whether anything is outdated is always re-derived from ASG/EC2 state later
(events are best effort, and the launch template events do not name a group).

Pure pydantic: no boto3 here, so the parser can be tested and reused anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from eks_rolling.errors import InvalidInputError

TriggerKind = Literal["manual", "update_asg", "modify_launch_template", "create_launch_template_version"]

_M = TypeVar("_M", bound=BaseModel)

_EXPECTED = (
    'expected a manual request {"asgName": "<name>", "dryRun": false} or an EventBridge '
    '"AWS API Call via CloudTrail" event for UpdateAutoScalingGroup with a launch template, '
    "ModifyLaunchTemplate or CreateLaunchTemplateVersion"
)


class TriggerRequest(BaseModel):
    """The normalised trigger. `asg_names` is empty for launch template events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: TriggerKind
    asg_names: tuple[str, ...] = ()
    launch_template_id: str | None = None
    launch_template_name: str | None = None
    dry_run: bool = False
    event_id: str | None = None


# --- manual ------------------------------------------------------------------------------------
class ManualRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    asg_name: str = Field(alias="asgName", min_length=1, max_length=255, pattern=r"^\S(.*\S)?$")
    dry_run: StrictBool = Field(False, alias="dryRun")


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
    auto_scaling_group_name: str = Field(alias="autoScalingGroupName", min_length=1)
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
    error_code: str | None = Field(None, alias="errorCode")
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(None, alias="responseElements")


class CloudTrailEvent(_Lenient):
    """The EventBridge envelope around a CloudTrail record."""

    version: str
    id: str = Field(min_length=1)
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    source: Literal["aws.autoscaling", "aws.ec2"]
    detail: CloudTrailDetail


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


def _parse_event(raw: Mapping[str, Any]) -> TriggerRequest:
    event = _validate(CloudTrailEvent, raw, "EventBridge event")
    detail = event.detail
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


def parse_trigger(raw: Any) -> TriggerRequest:
    """Normalise a manual request or a CloudTrail EventBridge event; InvalidInputError otherwise."""
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"input is a {type(raw).__name__}, not an object; {_EXPECTED}")
    if "detail" in raw or "detail-type" in raw:
        return _parse_event(raw)
    if "asgName" in raw:
        manual = _validate(ManualRequest, raw, "manual request")
        return TriggerRequest(kind="manual", asg_names=(manual.asg_name,), dry_run=manual.dry_run)
    raise InvalidInputError(_EXPECTED)
