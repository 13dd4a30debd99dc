"""Scheduling predicates shared by the scheduler, the DaemonSet controller and the tool's tests:
taints and tolerations, node affinity, volume zones (k8s scheduler framework plugins)."""

from __future__ import annotations

from typing import Any

from eks_rolling.labels import (
    LABEL_EBS_CSI_ZONE,
    LABEL_FAILURE_DOMAIN_BETA_ZONE,
    LABEL_TOPOLOGY_ZONE,
    TAINT_NODE_UNSCHEDULABLE,
)

from ..api.store import Obj


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(
    pod_spec: Obj, node: Obj, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
) -> Obj | None:
    tolerations = pod_spec.get("tolerations") or []
    for taint in node["spec"].get("taints") or []:
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return dict(taint)
    if node["spec"].get("unschedulable") and not tolerates(
        tolerations, {"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"}
    ):
        return {"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"}
    return None


def _expr_matches(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    val = labels.get(key)
    if op == "In":
        return val in values
    if op == "NotIn":
        return val not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and val is not None:
        try:
            return int(val) > int(values[0]) if op == "Gt" else int(val) < int(values[0])
        except (ValueError, IndexError):
            return False
    return False


def node_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    terms = required.get("nodeSelectorTerms") or []
    return any(all(_expr_matches(e, labels) for e in term.get("matchExpressions") or []) for term in terms)


def pv_zones(pv: Obj) -> set[str] | None:
    """Zones a PersistentVolume is pinned to (EBS: node affinity on the zone label)."""
    terms = ((pv["spec"].get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    zones: set[str] = set()
    for term in terms:
        for e in term.get("matchExpressions") or []:
            if (
                e["key"] in (LABEL_TOPOLOGY_ZONE, LABEL_EBS_CSI_ZONE, LABEL_FAILURE_DOMAIN_BETA_ZONE)
                and e["operator"] == "In"
            ):
                zones.update(e.get("values") or [])
    return zones or None


def node_zone(node: Obj) -> str | None:
    labels: dict[str, Any] = node["metadata"].get("labels") or {}
    zone = labels.get(LABEL_TOPOLOGY_ZONE)
    return str(zone) if zone else None
