"""CloudTrail's record of a write call served by moto, in the EventBridge event shape "AWS API Call
via CloudTrail" that a trail delivers to the default bus (the shape of tests/events/*.json).

Covered: the query-protocol services whose calls start a roll (EC2, Auto Scaling). The record
follows what CloudTrail writes for them: EC2 wraps the request in `<Action>Request` with the
query's PascalCase names and gives the response XML as JSON; Auto Scaling gives camelCase request
parameters and no response elements. A failed call is recorded too, with `errorCode` and
`errorMessage` (the trigger patterns exclude it). Values are typed by botocore's service model,
as CloudTrail types them (an Auto Scaling `minSize` is a number, a launch template version a
string).

Upstream: CloudTrail management events delivered to EventBridge
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html).
"""

from __future__ import annotations

import functools
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, Final

import botocore.session
from moto.core.models import DEFAULT_ACCOUNT_ID

from eks_rolling.triggers import CLOUDTRAIL

from .moto_server import ServedCall

SERVICES: Final = ("ec2", "autoscaling")
_NOT_PARAMETERS: Final = ("Action", "Version")


@functools.cache
def _shapes(service: str, action: str) -> tuple[Any, Any]:
    """The operation's input and output shapes (None, None: an action botocore does not know)."""
    try:
        operation = botocore.session.get_session().get_service_model(service).operation_model(action)
    except Exception:  # untyped values then
        return None, None
    return operation.input_shape, operation.output_shape


def _member(shape: Any, key: str) -> Any:
    if shape is None or shape.type_name != "structure":
        return None
    for name, member in shape.members.items():
        wire = (member.serialization.get("queryName"), member.serialization.get("name"), name)
        # Query names are PascalCase, EC2's XML names camelCase: compare past the first letter.
        if any(w and w[:1].lower() + w[1:] == key[:1].lower() + key[1:] for w in wire):
            return member
    return None


def _typed(value: str, shape: Any) -> Any:
    kind = shape.type_name if shape is not None else "string"
    try:
        if kind in ("integer", "long"):
            return int(value)
        if kind in ("double", "float"):
            return float(value)
    except ValueError:
        return value  # recorded as sent
    if kind == "boolean":
        return value.lower() == "true"
    return value


def _nest(params: dict[str, str], shape: Any) -> dict[str, Any]:
    """`A.B.1=x` -> {"A": {"B": ["x"]}}; Auto Scaling's `A.member.1` is a list too."""
    tree: dict[str, Any] = {}
    for key, value in params.items():
        if key in _NOT_PARAMETERS:
            continue
        path = [p for p in key.split(".") if p != "member"]
        node, node_shape = tree, shape
        for i, part in enumerate(path):
            last = i == len(path) - 1
            node_shape = (
                node_shape.member if node_shape is not None and part.isdigit() else _member(node_shape, part)
            )
            if last:
                node[part] = _typed(value, node_shape)
            else:
                node = node.setdefault(part, {})
    out: dict[str, Any] = _lists(tree)
    return out


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def _camel(node: Any) -> Any:
    if isinstance(node, list):
        return [_camel(v) for v in node]
    if isinstance(node, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in node.items()}
    return node


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml_json(elem: ET.Element, shape: Any) -> Any:
    """EC2's response XML as CloudTrail records it: `<x><item/>...</x>` as {"items": [...]},
    values typed by the output shape."""
    children = list(elem)
    if shape is not None and shape.type_name == "list":
        return {"items": [_xml_json(c, shape.member) for c in children]}
    if not children:
        return _typed((elem.text or "").strip(), shape)
    if all(_local(c.tag) == "item" for c in children):
        return {"items": [_xml_json(c, None) for c in children]}
    return {_local(c.tag): _xml_json(c, _member(shape, _local(c.tag))) for c in children}


def _error(body: bytes) -> tuple[str, str]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "InternalError", body[:200].decode("utf-8", "replace")
    code = next((e.text for e in root.iter() if _local(e.tag) == "Code"), None)
    message = next((e.text for e in root.iter() if _local(e.tag) == "Message"), None)
    return code or "InternalError", message or ""


def _response_elements(served: ServedCall) -> dict[str, Any] | None:
    if served.call.service != "ec2":
        return None  # Auto Scaling's writes record no response elements
    try:
        root = ET.fromstring(served.response)
    except ET.ParseError:
        return None
    body = _xml_json(root, _shapes(served.call.service, served.call.action)[1])
    if not isinstance(body, dict):
        return None
    namespace = root.tag.partition("}")[0].lstrip("{")
    return {_local(root.tag): {"xmlns": namespace, **body} if namespace else body}


def cloudtrail_event(served: ServedCall, *, region: str) -> dict[str, Any]:
    """The EventBridge event CloudTrail delivers for `served` (a write to EC2 or Auto Scaling)."""
    call = served.call
    service, action = call.service, call.action
    at = datetime.fromtimestamp(call.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = _nest(served.params, _shapes(service, action)[0])
    request = {f"{action}Request": params} if service == "ec2" else _camel(params)
    user = served.access_key or "sandbox"
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{user.upper()}",
            "arn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/{user}",
            "accountId": DEFAULT_ACCOUNT_ID,
            "accessKeyId": served.access_key,
            "userName": user,
        },
        "eventTime": at,
        "eventSource": f"{service}.amazonaws.com",
        "eventName": action,
        "awsRegion": served.region or region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": call.user_agent,
        "requestParameters": request,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": DEFAULT_ACCOUNT_ID,
        "eventCategory": "Management",
    }
    if served.status >= 400:
        detail["errorCode"], detail["errorMessage"] = _error(served.response)
    else:
        detail["responseElements"] = _response_elements(served)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": CLOUDTRAIL,
        "source": f"aws.{service}",
        "account": DEFAULT_ACCOUNT_ID,
        "time": at,
        "region": served.region or region,
        "resources": [],
        "detail": detail,
    }


def records(served: ServedCall) -> bool:
    """Whether a trail of write management events records `served` (and EventBridge sees it)."""
    return served.call.service in SERVICES and served.call.is_write
