"""The EventBridge patterns that start a roll: defined once, deployed by the CDK app
(`infra/trigger.py`) and by the running sandbox (`eks_rolling_sandbox.runner`), which matches the
CloudTrail events of the calls sent to it against the very same patterns.

Calls that failed (`errorCode`) and updates that do not touch the launch template (capacity only)
never match. EventBridge `exists` only matches leaves, so the patterns test the launch template's
id/name, not the `launchTemplate` object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

CLOUDTRAIL: Final = "AWS API Call via CloudTrail"
_EXISTS: Final = [{"exists": True}]
_SUCCEEDED: Final = {"errorCode": [{"exists": False}]}


def _lt_named(*path: str) -> list[dict[str, Any]]:
    """`$or` alternatives: the launch template under `path` is given by id or by name."""
    out = []
    for leaf in ("launchTemplateId", "launchTemplateName"):
        node: dict[str, Any] = {leaf: _EXISTS}
        for key in reversed(path):
            node = {key: node}
        out.append(node)
    return out


# Rule name -> (source, detail). One rule per API call keeps each pattern readable.
TRIGGER_PATTERNS: Final[Mapping[str, tuple[str, dict[str, Any]]]] = {
    # An ASG pointed at a (new version of a) launch template, plain or in a MixedInstancesPolicy.
    "AsgLaunchTemplateChanged": (
        "aws.autoscaling",
        {
            "eventSource": ["autoscaling.amazonaws.com"],
            "eventName": ["UpdateAutoScalingGroup"],
            **_SUCCEEDED,
            "requestParameters": {
                "$or": [
                    *_lt_named("launchTemplate"),
                    *_lt_named("mixedInstancesPolicy", "launchTemplate", "launchTemplateSpecification"),
                ]
            },
        },
    ),
    # A new default version: rolls the ASGs that follow `$Default`.
    "LaunchTemplateDefaultVersionChanged": (
        "aws.ec2",
        {
            "eventSource": ["ec2.amazonaws.com"],
            "eventName": ["ModifyLaunchTemplate"],
            **_SUCCEEDED,
            "requestParameters": {"ModifyLaunchTemplateRequest": {"SetDefaultVersion": _EXISTS}},
        },
    ),
    # A new version: rolls the ASGs that follow `$Latest`.
    "LaunchTemplateVersionCreated": (
        "aws.ec2",
        {"eventSource": ["ec2.amazonaws.com"], "eventName": ["CreateLaunchTemplateVersion"], **_SUCCEEDED},
    ),
}


def event_pattern(rule: str) -> dict[str, Any]:
    """The whole EventPattern of `rule`, as `events.EventPattern(...)` synthesizes it."""
    source, detail = TRIGGER_PATTERNS[rule]
    return {"source": [source], "detail-type": [CLOUDTRAIL], "detail": detail}
