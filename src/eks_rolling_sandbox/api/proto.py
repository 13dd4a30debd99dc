"""Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) <-> the JSON objects the
sandbox stores, by one generic codec driven by the field table generated from the upstream
generated.proto files and Go struct tags (proto_fields.json, tools/gen_proto_fields.py).

Follows apimachinery pkg/runtime/serializer/protobuf: a body is the 4-byte magic `k8s\\x00` and a
runtime.Unknown {typeMeta{apiVersion, kind}, raw = the object's message}; a watch stream is
4-byte big-endian length frames of metav1.WatchEvent without the magic, whose object is a full
body. The JSON side follows encoding/json on the Go structs: omitempty drops a zero non-pointer
field (always on the wire), a pointer set to zero stays, embedded structs are inlined, []byte is
base64. The apimachinery types with their own JSON form (Time, MicroTime, Duration, IntOrString,
Quantity, RawExtension, FieldsV1) are converted here; every other kind is table-driven.
"""

from __future__ import annotations

import base64
import calendar
import json
import re
import struct
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
WATCH_MEDIA_TYPE = MEDIA_TYPE + ";stream=watch"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_RUNTIME = "k8s.io.apimachinery.pkg.runtime"
_TIME, _MICROTIME, _DURATION = f"{_META}.Time", f"{_META}.MicroTime", f"{_META}.Duration"
_FIELDSV1, _RAW = f"{_META}.FieldsV1", f"{_RUNTIME}.RawExtension"
_INTSTR = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_SPECIAL = {_TIME, _MICROTIME, _DURATION, _FIELDSV1, _RAW, _INTSTR, _QUANTITY}

# apiVersion -> proto package; meta.k8s.io kinds (Status, DeleteOptions, ...) are found in every group.
_PACKAGES = {
    "v1": "k8s.io.api.core.v1",
    "apps/v1": "k8s.io.api.apps.v1",
    "policy/v1": "k8s.io.api.policy.v1",
    "autoscaling/v1": "k8s.io.api.autoscaling.v1",
    "discovery.k8s.io/v1": "k8s.io.api.discovery.v1",
    "coordination.k8s.io/v1": "k8s.io.api.coordination.v1",
    "meta.k8s.io/v1": _META,
}
_VARINT_TYPES = {"int32", "int64", "bool"}


class ProtoError(ValueError):
    """A body that is not a Kubernetes protobuf message this server knows."""


@cache
def _table() -> dict[str, dict[int, list[str]]]:
    raw = json.loads(resources.files(__package__).joinpath("proto_fields.json").read_text())
    return {m: {int(n): f for n, f in fields.items()} for m, fields in raw["messages"].items()}


def message_for(api_version: str, kind: str) -> str | None:
    """The proto message of a kind, or None when it has no protobuf form here (e.g. Table)."""
    table = _table()
    for package in (_PACKAGES.get(api_version), _META):
        if package and f"{package}.{kind}" in table:
            return f"{package}.{kind}"
    return None


# --- wire format -------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32/int64 go out as 10-byte two's complement, as Go does
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ProtoError("truncated varint")
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(number, wire type, value) in wire order; length-delimited values stay bytes."""
    out: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wire = key >> 3, key & 7
        v: int | bytes
        if wire == 0:
            v, i = _read_varint(data, i)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            v, i = data[i : i + n], i + n
        elif wire == 2:
            n, i = _read_varint(data, i)
            v, i = data[i : i + n], i + n
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        if i > len(data):
            raise ProtoError(f"truncated field {num}")
        out.append((num, wire, v))
    return out


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


# --- JSON forms of the apimachinery types ------------------------------------------------------
def _time_to_json(seconds: int, nanos: int, micro: bool) -> str | None:
    if seconds == 0 and nanos == 0:
        return None  # the zero Time marshals as JSON null
    t = datetime.fromtimestamp(seconds, UTC)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_from_json(value: str) -> tuple[int, int]:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return calendar.timegm(t.utctimetuple()), t.microsecond * 1000


_DURATION_UNITS = {
    "h": 3600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "µs": 10**3,
    "ns": 1,
}


def _duration_to_json(ns: int) -> str:
    """time.Duration.String() for whole-unit values: 1h2m3s, 1.5s, 0s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    h, rest = divmod(ns, 3600 * 10**9)
    m, rest = divmod(rest, 60 * 10**9)
    secs = f"{rest / 10**9:.9f}".rstrip("0").rstrip(".")
    return sign + (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{secs}s"


def _duration_from_json(value: str) -> int:
    total = 0
    for num, unit in re.findall(r"([0-9.]+)(h|ms|us|µs|ns|m|s)", value):
        total += int(float(num) * _DURATION_UNITS[unit])
    return -total if value.startswith("-") else total


def _special_to_json(name: str, data: bytes) -> Any:
    f = {num: v for num, _, v in _fields(data)}
    if name in (_TIME, _MICROTIME):
        return _time_to_json(_signed(f.get(1, 0)), f.get(2, 0), name == _MICROTIME)
    if name == _DURATION:
        return _duration_to_json(_signed(f.get(1, 0)))
    if name == _INTSTR:
        return _signed(f.get(2, 0)) if f.get(1, 0) == 0 else f.get(3, b"").decode()
    if name == _QUANTITY:
        return f.get(1, b"").decode()
    raw = f.get(1, b"")  # RawExtension and FieldsV1 carry JSON
    return json.loads(raw) if raw else None


def _special_to_proto(name: str, value: Any) -> bytes:
    if name in (_TIME, _MICROTIME):
        seconds, nanos = _time_from_json(value)
        return _key(1, 0) + _varint(seconds) + ((_key(2, 0) + _varint(nanos)) if nanos else b"")
    if name == _DURATION:
        return _key(1, 0) + _varint(_duration_from_json(value))
    if name == _INTSTR:
        if isinstance(value, int):
            return _key(1, 0) + _varint(0) + _key(2, 0) + _varint(value)
        return _key(1, 0) + _varint(1) + _bytes_field(3, str(value).encode())
    if name == _QUANTITY:
        return _bytes_field(1, str(value).encode())
    return _bytes_field(1, json.dumps(value, separators=(",", ":")).encode())


# --- messages ----------------------------------------------------------------------------------
def _is_zero(v: Any) -> bool:
    return v in ("", 0, b"")  # False == 0


def _scalar_to_json(typ: str, wire: int, v: Any) -> Any:
    if typ == "string":
        return v.decode()
    if typ == "bytes":
        return base64.b64encode(v).decode()
    if typ == "bool":
        return bool(v)
    if typ in ("int32", "int64"):
        return _signed(v)
    if typ == "double":
        return struct.unpack("<d", v)[0]
    if typ == "float":
        return struct.unpack("<f", v)[0]
    raise ProtoError(f"unsupported scalar {typ}")


def _value_to_json(typ: str, wire: int, v: Any) -> Any:
    if typ in _SPECIAL:
        return _special_to_json(typ, v)
    if typ in _table():
        return to_json(typ, v)
    return _scalar_to_json(typ, wire, v)


def to_json(message: str, data: bytes) -> dict[str, Any]:
    """Decode one message into its JSON object (no apiVersion/kind: those live in the envelope)."""
    spec = _table()[message]
    out: dict[str, Any] = {}
    inline: list[dict[str, Any]] = []
    for num, wire, v in _fields(data):
        f = spec.get(num)
        if f is None:
            continue  # a field newer than the table: dropped, as an older server would
        name, label, typ = f[0], f[1], f[2]
        if label == "map":
            entry = {n: (w, x) for n, w, x in _fields(v)}
            k = _value_to_json(typ, *entry[1]) if 1 in entry else ""
            val = _value_to_json(f[3], *entry[2]) if 2 in entry else ("" if f[3] == "string" else None)
            out.setdefault(name, {})[k] = val
        elif label == "rep":
            items = out.setdefault(name, [])
            if wire == 2 and typ in _VARINT_TYPES:  # packed
                j = 0
                while j < len(v):
                    n, j = _read_varint(v, j)
                    items.append(_scalar_to_json(typ, 0, n))
            else:
                items.append(_value_to_json(typ, wire, v))
        elif "i" in f[3]:
            inline.append(to_json(typ, v))
        else:
            value = _value_to_json(typ, wire, v)
            if value is None or ("o" in f[3] and "p" not in f[3] and _is_zero(value)):
                continue
            out[name] = value
    for sub in inline:
        out.update(sub)
    return out


def _key(num: int, wire: int) -> bytes:
    return _varint(num << 3 | wire)


def _bytes_field(num: int, data: bytes) -> bytes:
    return _key(num, 2) + _varint(len(data)) + data


def _scalar_to_proto(num: int, typ: str, v: Any) -> bytes:
    if typ == "string":
        return _bytes_field(num, str(v).encode())
    if typ == "bytes":
        return _bytes_field(num, base64.b64decode(v))
    if typ in _VARINT_TYPES:
        return _key(num, 0) + _varint(int(v))
    if typ == "double":
        return _key(num, 1) + struct.pack("<d", float(v))
    if typ == "float":
        return _key(num, 5) + struct.pack("<f", float(v))
    raise ProtoError(f"unsupported scalar {typ}")


def _value_to_proto(num: int, typ: str, v: Any) -> bytes:
    if typ in _SPECIAL:
        return _bytes_field(num, _special_to_proto(typ, v))
    if typ in _table():
        if not isinstance(v, dict):
            raise ProtoError(f"field {num}: {typ} needs an object, got {type(v).__name__}")
        return _bytes_field(num, to_proto(typ, v))
    return _scalar_to_proto(num, typ, v)


def to_proto(message: str, obj: dict[str, Any]) -> bytes:
    """Encode a JSON object as one message; keys the message does not have are left out."""
    out = bytearray()
    for num, f in sorted(_table()[message].items()):
        name, label, typ = f[0], f[1], f[2]
        if label != "map" and "i" in f[3]:
            sub = to_proto(typ, obj)  # an inlined struct's keys sit in the parent object
            if sub:
                out += _bytes_field(num, sub)
            continue
        v = obj.get(name)
        if v is None:
            continue
        if label == "map":
            for k in sorted(v):  # Go marshals map keys sorted
                entry = _value_to_proto(1, typ, k)
                if v[k] is not None:
                    entry += _value_to_proto(2, f[3], v[k])
                out += _bytes_field(num, entry)
        elif label == "rep":
            for item in v:
                out += _value_to_proto(num, typ, item)
        else:
            out += _value_to_proto(num, typ, v)
    return bytes(out)


# --- bodies ------------------------------------------------------------------------------------
def decode(body: bytes) -> dict[str, Any]:
    """A request body -> the JSON object, with apiVersion and kind from the envelope."""
    if not body.startswith(MAGIC):
        raise ProtoError("the body does not start with the protobuf magic number k8s\\x00")
    env = {num: v for num, _, v in _fields(body[len(MAGIC) :])}
    type_meta = {num: v.decode() for num, _, v in _fields(env.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    message = message_for(api_version, kind)
    if message is None:
        raise ProtoError(f"no protobuf form for {api_version}, Kind={kind}")
    return {"kind": kind, "apiVersion": api_version, **to_json(message, env.get(2, b""))}


def encode(obj: dict[str, Any]) -> bytes | None:
    """A response object -> the protobuf body, or None when its kind has no protobuf form."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    message = message_for(api_version, kind)
    if message is None:
        return None
    type_meta = _bytes_field(1, api_version.encode()) + _bytes_field(2, kind.encode())
    return MAGIC + _bytes_field(1, type_meta) + _bytes_field(2, to_proto(message, obj))


def watch_frame(event_type: str, body: bytes) -> bytes:
    """One watch event in a protobuf stream: length-prefixed metav1.WatchEvent, its object a body."""
    event = _bytes_field(1, event_type.encode()) + _bytes_field(2, _bytes_field(1, body))
    return struct.pack(">I", len(event)) + event


def wants_protobuf(accept: str | None) -> bool:
    """Content negotiation: the client's first preference is protobuf (kubectl's typed clients send
    `application/vnd.kubernetes.protobuf,application/json`)."""
    first = (accept or "").split(",")[0].split(";")[0].strip().lower()
    return first == MEDIA_TYPE
