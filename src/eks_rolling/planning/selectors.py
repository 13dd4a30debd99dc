"""Label selector matching in object form (matchLabels / matchExpressions), pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """policy/v1 semantics: a `None` selector matches nothing, `{}` matches everything."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


class SelectorError(ValueError):
    """A label selector string that does not parse (the caller names where it came from)."""


_KEY = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")
_VALUE = re.compile(r"^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$")
_SET = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


def parse_selector(text: str) -> dict[str, Any]:
    """A `kubectl -l` selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) in object form, as
    `selector_matches` takes it. SelectorError names the bad part; an empty string matches all."""
    exprs: list[dict[str, Any]] = []
    for part in _split(text):
        m = _SET.match(part)
        if m:
            values = [v.strip() for v in m["values"].split(",") if v.strip()]
            if not values:
                raise SelectorError(f"{part!r}: an empty value set")
            key, op = m["key"], "In" if m["op"] == "in" else "NotIn"
            exprs.append(
                {"key": _key(key, part), "operator": op, "values": [_value(v, part) for v in values]}
            )
            continue
        for sep, op in (("!=", "NotIn"), ("==", "In"), ("=", "In")):
            if sep in part:
                key, value = (s.strip() for s in part.split(sep, 1))
                exprs.append({"key": _key(key, part), "operator": op, "values": [_value(value, part)]})
                break
        else:
            if part.startswith("!"):
                exprs.append({"key": _key(part[1:].strip(), part), "operator": "DoesNotExist"})
            else:
                exprs.append({"key": _key(part, part), "operator": "Exists"})
    return {"matchExpressions": exprs}


def _split(text: str) -> list[str]:
    """Commas outside parentheses separate requirements."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth not in (0, 1):
            raise SelectorError(f"{text!r}: unbalanced parentheses")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if depth:
        raise SelectorError(f"{text!r}: unbalanced parentheses")
    parts.append(cur.strip())
    if parts == [""]:
        return []
    if "" in parts:
        raise SelectorError(f"{text!r}: an empty requirement")
    return parts


def _key(key: str, part: str) -> str:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise SelectorError(f"{part!r}: {key!r} is not a valid label key")
    return key


def _value(value: str, part: str) -> str:
    if not _VALUE.match(value) or len(value) > 63:
        raise SelectorError(f"{part!r}: {value!r} is not a valid label value")
    return value
