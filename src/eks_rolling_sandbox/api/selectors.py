"""Label and field selectors, string form (query parameters) and object form (spec.selector).

Upstream: apimachinery pkg/labels/selector.go and pkg/fields/selector.go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request

# Selectors only read objects: a read-only view, so any store object (api/store.Obj) matches.
ObjView = Mapping[str, Any]
Matcher = Callable[[ObjView], bool]

_REQ = re.compile(
    r"""^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*
        (?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$""",
    re.VERBOSE,
)


def _split_top(expr: str) -> list[str]:
    """Split on commas that are not inside a `( ... )` value set."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


LabelTest = Callable[[Mapping[str, str]], bool]


def _has_key(key: str, present: bool) -> LabelTest:
    if present:
        return lambda lb: key in lb
    return lambda lb: key not in lb


def _value_equals(key: str, value: str | None, equal: bool) -> LabelTest:
    if equal:
        return lambda lb: lb.get(key) == value
    return lambda lb: lb.get(key) != value


def _value_in(key: str, values: set[str], inside: bool) -> LabelTest:
    if inside:
        return lambda lb: lb.get(key) in values
    return lambda lb: lb.get(key) not in values


def parse_label_selector(expr: str | None) -> LabelTest:
    """`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`; comma is AND."""
    if not expr:
        return lambda labels: True
    tests: list[LabelTest] = []
    for part in _split_top(expr):
        m = _REQ.match(part)
        if not m:
            raise bad_request(f"unable to parse requirement: {part!r}")
        key, op, val, neg = m["key"], (m["op"] or "").strip(), m["val"], bool(m["neg"])
        if neg:
            if op:
                raise bad_request(f"unable to parse requirement: {part!r}")
            tests.append(_has_key(key, present=False))
        elif not op:
            tests.append(_has_key(key, present=True))
        elif op in ("=", "=="):
            tests.append(_value_equals(key, val, equal=True))
        elif op == "!=":
            tests.append(_value_equals(key, val, equal=False))
        else:
            values = {v.strip() for v in (val or "").strip("()").split(",") if v.strip()}
            tests.append(_value_in(key, values, inside=op == "in"))
    return lambda labels: all(t(labels) for t in tests)


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Object-form selector (matchLabels / matchExpressions). `None` matches nothing, `{}` everything
    (the policy/v1 PodDisruptionBudget rule).

    The API server's own copy (apimachinery's labels package), deliberately apart from the
    runtime's `eks_rolling.planning.selectors`: the plan predicts what this server will decide, and
    one shared bug would make the prediction agree with itself."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """Serialise an object-form selector the way `kubectl` and Scale.status.selector show it."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], ",".join(sorted(expr.get("values") or []))
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                op, f"!{key}"
            )
        )
    return ",".join(parts)


# Field selectors: what each resource supports (pkg/registry/*/strategy.go ToSelectableFields).
_POD_FIELDS: dict[str, Callable[[ObjView], str]] = {
    "metadata.name": lambda o: o["metadata"]["name"],
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "spec.nodeName": lambda o: o["spec"].get("nodeName") or "",
    "spec.restartPolicy": lambda o: o["spec"].get("restartPolicy", ""),
    "spec.schedulerName": lambda o: o["spec"].get("schedulerName", ""),
    "spec.serviceAccountName": lambda o: o["spec"].get("serviceAccountName", ""),
    "spec.hostNetwork": lambda o: str(bool(o["spec"].get("hostNetwork", False))).lower(),
    "status.phase": lambda o: o.get("status", {}).get("phase", ""),
    "status.podIP": lambda o: o.get("status", {}).get("podIP", ""),
    "status.nominatedNodeName": lambda o: o.get("status", {}).get("nominatedNodeName", ""),
}
_NODE_FIELDS: dict[str, Callable[[ObjView], str]] = {
    "metadata.name": lambda o: o["metadata"]["name"],
    "spec.unschedulable": lambda o: str(bool(o["spec"].get("unschedulable", False))).lower(),
}
_EVENT_FIELDS: dict[str, Callable[[ObjView], str]] = {
    "involvedObject.kind": lambda o: o.get("involvedObject", {}).get("kind", ""),
    "involvedObject.name": lambda o: o.get("involvedObject", {}).get("name", ""),
    "involvedObject.namespace": lambda o: o.get("involvedObject", {}).get("namespace", ""),
    "involvedObject.uid": lambda o: o.get("involvedObject", {}).get("uid", ""),
    "reason": lambda o: o.get("reason", ""),
    "type": lambda o: o.get("type", ""),
}
_DEFAULT_FIELDS: dict[str, Callable[[ObjView], str]] = {
    "metadata.name": lambda o: o["metadata"]["name"],
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
}
FIELDS: dict[str, dict[str, Callable[[ObjView], str]]] = {
    "pods": _POD_FIELDS,
    "nodes": _NODE_FIELDS,
    "events": {**_DEFAULT_FIELDS, **_EVENT_FIELDS},
}


def _field_test(getter: Callable[[ObjView], str], value: str, equal: bool) -> Matcher:
    if equal:
        return lambda o: getter(o) == value
    return lambda o: getter(o) != value


def parse_field_selector(plural: str, expr: str | None) -> Matcher:
    if not expr:
        return lambda obj: True
    fields = FIELDS.get(plural, _DEFAULT_FIELDS)
    tests: list[Matcher] = []
    for part in _split_top(expr):
        m = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid field selector: {part!r}")
        field, op, value = m.groups()
        getter = fields.get(field)
        if getter is None:
            # The kind's field label conversion func (pkg/apis/core/v1/conversion.go), or
            # runtime.DefaultMetaV1FieldSelectorConversion for kinds without one.
            if plural in FIELDS:
                raise bad_request(f"field label not supported: {field}")
            raise bad_request(
                f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'
            )
        tests.append(_field_test(getter, value, equal=op != "!="))
    return lambda obj: all(t(obj) for t in tests)


def field_equals(expr: str | None, field: str) -> str | None:
    """The value of an exact `field=value` term, if the selector has one (used to hit an index)."""
    for part in _split_top(expr or ""):
        m = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=)\s*(.*?)\s*$", part)
        if m and m.group(1) == field:
            return m.group(3)
    return None
