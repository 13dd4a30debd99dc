"""Generate src/eks_rolling_sandbox/api/proto_fields.json: the protobuf field table the sandbox's
generic proto<->JSON codec (eks_rolling_sandbox/api/proto.py) runs on.

Inputs are checkouts of the public kubernetes/api and kubernetes/apimachinery repositories:

    git --git-dir=<mirror of kubernetes/api> archive HEAD | tar -x -C /tmp/api
    git --git-dir=<mirror of kubernetes/apimachinery> archive HEAD | tar -x -C /tmp/apimachinery
    python tools/gen_proto_fields.py --api /tmp/api --apimachinery /tmp/apimachinery

Each message's fields (number, type, repeated/map) come from the package's generated.proto. The
JSON side comes from the Go struct tags in the same package's types.go: the JSON name, `omitempty`,
whether the Go field is a pointer (a pointer set to zero is on the wire and must stay in the JSON,
a non-pointer zero is always on the wire and omitempty drops it), and embedded structs that JSON
inlines (`VolumeSource json:""`). Only messages reachable from the kinds the sandbox serves are kept.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

# (package dir relative to its repo, proto package) for every package the served kinds reach.
PACKAGES = {
    "api": [
        ("core/v1", "k8s.io.api.core.v1"),
        ("apps/v1", "k8s.io.api.apps.v1"),
        ("policy/v1", "k8s.io.api.policy.v1"),
        ("autoscaling/v1", "k8s.io.api.autoscaling.v1"),
        ("discovery/v1", "k8s.io.api.discovery.v1"),
        ("coordination/v1", "k8s.io.api.coordination.v1"),
    ],
    "apimachinery": [
        ("pkg/apis/meta/v1", "k8s.io.apimachinery.pkg.apis.meta.v1"),
        ("pkg/runtime", "k8s.io.apimachinery.pkg.runtime"),
        ("pkg/runtime/schema", "k8s.io.apimachinery.pkg.runtime.schema"),
        ("pkg/util/intstr", "k8s.io.apimachinery.pkg.util.intstr"),
        ("pkg/api/resource", "k8s.io.apimachinery.pkg.api.resource"),
    ],
}

# The kinds served (src/eks_rolling_sandbox/api/resources.py), their lists, and what travels with them.
ROOTS = [
    f"k8s.io.api.core.v1.{k}"
    for k in (
        "Node",
        "Pod",
        "Namespace",
        "Service",
        "Endpoints",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Event",
        "Secret",
        "ConfigMap",
        "ServiceAccount",
        "Binding",
    )
] + [
    "k8s.io.api.apps.v1.Deployment",
    "k8s.io.api.apps.v1.ReplicaSet",
    "k8s.io.api.apps.v1.StatefulSet",
    "k8s.io.api.apps.v1.DaemonSet",
    "k8s.io.api.apps.v1.ControllerRevision",
    "k8s.io.api.policy.v1.PodDisruptionBudget",
    "k8s.io.api.policy.v1.Eviction",
    "k8s.io.api.autoscaling.v1.Scale",
    "k8s.io.api.discovery.v1.EndpointSlice",
    "k8s.io.api.coordination.v1.Lease",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "k8s.io.apimachinery.pkg.runtime.Unknown",
]
_NO_LIST = {"Binding", "Eviction", "Scale", "Status", "DeleteOptions", "WatchEvent", "Unknown"}
ROOTS += [r + "List" for r in ROOTS if r.rsplit(".", 1)[1] not in _NO_LIST]

SCALARS = {"string", "int32", "int64", "bool", "bytes", "double", "float"}
_MESSAGE = re.compile(r"^message (\w+) \{$(.*?)^\}", re.M | re.S)
_FIELD = re.compile(r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+);", re.M)
_MAP = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+);", re.M)
_STRUCT = re.compile(r"^type (\w+) struct \{$(.*?)^\}", re.M | re.S)
_GOFIELD = re.compile(r"^\s*(?:(\w+)\s+)?([*\[\]\w.]+)\s+`([^`]*)`", re.M)


def _resolve(typ: str, package: str) -> str:
    if typ in SCALARS:
        return typ
    return typ.lstrip(".") if "." in typ else f"{package}.{typ}"


def _go_tags(text: str) -> dict[str, dict[int, dict[str, bool | str]]]:
    """struct name -> proto field number -> JSON name and flags, from the Go struct tags."""
    out: dict[str, dict[int, dict[str, bool | str]]] = {}
    for m in _STRUCT.finditer(text):
        fields: dict[int, dict[str, bool | str]] = {}
        for f in _GOFIELD.finditer(m.group(2)):
            name, gotype, tags = f.groups()
            pb = re.search(r'protobuf:"[a-z0-9]+,(\d+),', tags)
            if pb is None:
                continue
            js = re.search(r'json:"([^"]*)"', tags)
            json_opts = (js.group(1) if js else "").split(",")
            fields[int(pb.group(1))] = {
                "json": json_opts[0],
                "omitempty": "omitempty" in json_opts[1:],
                "pointer": gotype.startswith("*"),
                # An embedded struct whose JSON tag names no field is flattened by encoding/json.
                "inline": name is None and json_opts[0] == "",
            }
        out[m.group(1)] = fields
    return out


def _parse(root: Path, rel: str, package: str, messages: dict[str, object]) -> None:
    proto = (root / rel / "generated.proto").read_text()
    tags: dict[str, dict[int, dict[str, bool | str]]] = {}
    for go in sorted((root / rel).glob("*.go")):
        if not go.name.endswith("_test.go") and not go.name.startswith("zz_"):
            tags.update(_go_tags(go.read_text()))
    for m in _MESSAGE.finditer(proto):
        name, body = m.group(1), re.sub(r"^\s*//.*$", "", m.group(2), flags=re.M)
        go = tags.get(name, {})
        fields: dict[str, list[object]] = {}
        for label, typ, fname, num in _FIELD.findall(body):
            g = go.get(int(num), {})
            flags = "".join(
                c
                for c, on in (("o", g.get("omitempty")), ("p", g.get("pointer")), ("i", g.get("inline")))
                if on
            )
            json_name = str(g.get("json") or fname) if not g.get("inline") else fname
            fields[num] = [json_name, "rep" if label == "repeated" else "opt", _resolve(typ, package), flags]
        for ktyp, vtyp, fname, num in _MAP.findall(body):
            g = go.get(int(num), {})
            fields[num] = [
                str(g.get("json") or fname),
                "map",
                _resolve(ktyp, package),
                _resolve(vtyp, package),
            ]
        messages[f"{package}.{name}"] = fields


def _reachable(messages: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    keep: dict[str, dict[str, list[str]]] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = messages[name]
        for f in keep[name].values():
            todo += [t for t in f[2:] if t in messages]
    return dict(sorted(keep.items()))


def _commit(root: Path) -> str:
    marker = root / ".commit"
    if marker.exists():
        return marker.read_text().strip()
    try:
        return subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", type=Path, required=True, help="checkout of kubernetes/api")
    ap.add_argument("--apimachinery", type=Path, required=True, help="checkout of kubernetes/apimachinery")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "src/eks_rolling_sandbox/api/proto_fields.json",
    )
    ap.add_argument("--api-commit", default=None)
    ap.add_argument("--apimachinery-commit", default=None)
    args = ap.parse_args()
    messages: dict[str, object] = {}
    roots = {"api": args.api, "apimachinery": args.apimachinery}
    for repo, pkgs in PACKAGES.items():
        for rel, package in pkgs:
            _parse(roots[repo], rel, package, messages)
    table = {
        "_source": {
            "kubernetes/api": args.api_commit or _commit(args.api),
            "kubernetes/apimachinery": args.apimachinery_commit or _commit(args.apimachinery),
            "generator": "tools/gen_proto_fields.py",
            "format": "message -> field number -> [json name, opt|rep, type, flags: o=omitempty p=pointer i=inline]"
            " or [json name, map, key type, value type]",
        },
        "messages": _reachable(messages),  # type: ignore[arg-type]
    }
    # One message per line: a regenerated table diffs by message.
    lines = [
        f"    {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in table["messages"].items()
    ]
    source = json.dumps(table["_source"], indent=2).replace("\n", "\n  ")
    args.out.write_text(
        '{\n  "_source": ' + source + ',\n  "messages": {\n' + ",\n".join(lines) + "\n  }\n}\n"
    )
    print(f"{args.out}: {len(table['messages'])} messages")


if __name__ == "__main__":
    main()
