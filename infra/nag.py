"""cdk-nag (AwsSolutions) acknowledgments, each with the reason a reviewer needs.

cdk-nag 3 reports through CDK's policy validation: an unacknowledged error fails synth. One
finding of a multi-finding rule (IAM5) is `AwsSolutions-IAM5[Resource::<what>]`, where `<what>`
is the policy text as cdk-nag renders it (`<AWS::Region>`, `<LogicalId.Arn>`); `rendered()`
produces that text from a token so the acknowledgments stay exact when logical ids change.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge `rule` (e.g. "AwsSolutions-L1" or "AwsSolutions-IAM5[Resource::*]") on
    `construct` and its children."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


def wildcard(construct: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge one IAM5 finding: a wildcard in `resource` (a literal or a token string)."""
    acknowledge(construct, f"AwsSolutions-IAM5[Resource::{rendered(construct, resource)}]", reason)


def wildcard_action(construct: IConstruct, action: str, reason: str) -> None:
    acknowledge(construct, f"AwsSolutions-IAM5[Action::{action}]", reason)


def rendered(scope: IConstruct, value: str) -> str:
    """`value` as cdk-nag prints it: intrinsics become <Ref> / <LogicalId.Attr>."""
    return _render(Stack.of(scope).resolve(value))


def _render(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((key, val),) = node.items()
        if key == "Ref":
            return f"<{val}>"
        if key == "Fn::GetAtt":
            return f"<{val[0]}.{val[1]}>"
        if key == "Fn::Join":
            sep, parts = val
            return str(sep).join(_render(p) for p in parts)
    return json.dumps(node)
