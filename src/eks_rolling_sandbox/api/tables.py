"""Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which kubectl asks
for on `get`. Columns follow pkg/printers/internalversion/printers.go for the kinds we serve."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .objects import node_is_ready
from .resources import Resource
from .store import Obj, utcnow


def human_age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=utcnow().tzinfo)
    except ValueError:
        return "<invalid>"
    s = max(int((utcnow() - then).total_seconds()), 0)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": type_, "format": fmt, "description": name, "priority": priority}


def _pod_status(p: Obj) -> str:
    if "deletionTimestamp" in p["metadata"]:
        return "Terminating"
    phase = p.get("status", {}).get("phase", "Pending")
    if phase == "Succeeded":
        return "Completed"
    if phase == "Pending" and p["spec"].get("nodeName"):
        return "ContainerCreating"
    return str(phase)


def _pod_row(p: Obj) -> list[Any]:
    st = p.get("status", {})
    cs = st.get("containerStatuses", [])
    total = len(p["spec"].get("containers", []))
    ready = sum(1 for c in cs if c.get("ready"))
    return [
        p["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(p),
        str(sum(c.get("restartCount", 0) for c in cs)),
        human_age(p["metadata"].get("creationTimestamp")),
        st.get("podIP", "<none>"),
        p["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _node_row(n: Obj) -> list[Any]:
    status = "Ready" if node_is_ready(n) else "NotReady"
    if n["spec"].get("unschedulable"):
        status += ",SchedulingDisabled"
    info = n.get("status", {}).get("nodeInfo", {})
    ip = next(
        (a["address"] for a in n.get("status", {}).get("addresses", []) if a["type"] == "InternalIP"),
        "<none>",
    )
    return [
        n["metadata"]["name"],
        status,
        "<none>",
        human_age(n["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        ip,
        "<none>",
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _deploy_row(d: Obj) -> list[Any]:
    st = d.get("status", {})
    return [
        d["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        human_age(d["metadata"].get("creationTimestamp")),
    ]


def _sts_row(s: Obj) -> list[Any]:
    st = s.get("status", {})
    return [
        s["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{s['spec'].get('replicas', 1)}",
        human_age(s["metadata"].get("creationTimestamp")),
    ]


def _rs_row(r: Obj) -> list[Any]:
    st = r.get("status", {})
    return [
        r["metadata"]["name"],
        r["spec"].get("replicas", 1),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        human_age(r["metadata"].get("creationTimestamp")),
    ]


def _ds_row(d: Obj) -> list[Any]:
    st = d.get("status", {})
    sel = ",".join(
        f"{k}={v}"
        for k, v in (d["spec"].get("template", {}).get("spec", {}).get("nodeSelector") or {}).items()
    )
    return [
        d["metadata"]["name"],
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        sel or "<none>",
        human_age(d["metadata"].get("creationTimestamp")),
    ]


def _pdb_row(p: Obj) -> list[Any]:
    spec = p["spec"]
    return [
        p["metadata"]["name"],
        str(spec["minAvailable"]) if "minAvailable" in spec else "N/A",
        str(spec["maxUnavailable"]) if "maxUnavailable" in spec else "N/A",
        p.get("status", {}).get("disruptionsAllowed", 0),
        human_age(p["metadata"].get("creationTimestamp")),
    ]


def _svc_row(s: Obj) -> list[Any]:
    spec = s["spec"]
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports", [])) or "<none>"
    return [
        s["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "None"),
        "<none>",
        ports,
        human_age(s["metadata"].get("creationTimestamp")),
    ]


PRINTERS: dict[str, tuple[list[Obj], Callable[[Obj], list[Any]]]] = {
    "pods": (
        [
            _col("Name", fmt="name"),
            _col("Ready"),
            _col("Status"),
            _col("Restarts"),
            _col("Age"),
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod_row,
    ),
    "nodes": (
        [
            _col("Name", fmt="name"),
            _col("Status"),
            _col("Roles"),
            _col("Age"),
            _col("Version"),
            _col("Internal-IP", priority=1),
            _col("External-IP", priority=1),
            _col("OS-Image", priority=1),
            _col("Kernel-Version", priority=1),
            _col("Container-Runtime", priority=1),
        ],
        _node_row,
    ),
    "deployments": (
        [
            _col("Name", fmt="name"),
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Age"),
        ],
        _deploy_row,
    ),
    "statefulsets": ([_col("Name", fmt="name"), _col("Ready"), _col("Age")], _sts_row),
    "replicasets": (
        [
            _col("Name", fmt="name"),
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Age"),
        ],
        _rs_row,
    ),
    "daemonsets": (
        [
            _col("Name", fmt="name"),
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Node Selector"),
            _col("Age"),
        ],
        _ds_row,
    ),
    "poddisruptionbudgets": (
        [
            _col("Name", fmt="name"),
            _col("Min Available"),
            _col("Max Unavailable"),
            _col("Allowed Disruptions", "integer"),
            _col("Age"),
        ],
        _pdb_row,
    ),
    "services": (
        [
            _col("Name", fmt="name"),
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            _col("Age"),
        ],
        _svc_row,
    ),
}
DEFAULT_PRINTER: tuple[list[Obj], Callable[[Obj], list[Any]]] = (
    [_col("Name", fmt="name"), _col("Age")],
    lambda o: [o["metadata"]["name"], human_age(o["metadata"].get("creationTimestamp"))],
)


def to_table(res: Resource, items: list[Obj], list_rv: str | None, include_object: str = "Metadata") -> Obj:
    columns, row = PRINTERS.get(res.plural, DEFAULT_PRINTER)
    rows = []
    for o in items:
        entry: Obj = {"cells": row(o)}
        if include_object == "Object":
            entry["object"] = o
        elif include_object != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"],
            }
        rows.append(entry)
    md: Obj = {"resourceVersion": list_rv} if list_rv else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": md,
        "columnDefinitions": columns,
        "rows": rows,
    }
