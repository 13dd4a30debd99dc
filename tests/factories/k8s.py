"""Builders for the sandbox's own tests: manifests with sensible defaults and keyword overrides, plus
the few waits every scenario needs. Manifests are plain dicts in the shape `kubectl apply` takes, so
they can go through the API (official client, kubectl) or `Sandbox.apply` alike."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE
from eks_rolling_sandbox.api import objects
from eks_rolling_sandbox.api.store import Obj, timestamp
from eks_rolling_sandbox.sandbox import Sandbox

T = TypeVar("T")

REGION = "us-east-1"
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
IMAGE = "public.ecr.aws/docker/library/nginx:1.27"


def _deep_update(base: Obj, overrides: Obj) -> Obj:
    """Recursive dict merge: `overrides` wins, nested dicts are merged, everything else replaced."""
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


# --- nodes -----------------------------------------------------------------------------------------
def node_name(k: int) -> str:
    return f"ip-10-0-{k}-10.ec2.internal"


def add_node(
    sb: Sandbox,
    k: int,
    az: str = AZS[0],
    *,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    ready: bool = True,
    name: str | None = None,
    instance_type: str = "m5.large",
) -> str:
    """Register a node as the kubelet would (NotReady, not-ready taint), optionally flip it Ready."""
    name = name or node_name(k)
    sb.store.create(
        "nodes",
        objects.node_object(
            name,
            instance_id=f"i-{k:017x}",
            az=az,
            region=REGION,
            instance_type=instance_type,
            index=k,
            labels=labels,
            taints=taints,
        ),
    )
    if ready:
        set_node_ready(sb, name, "True")
    return name


def make_ready_node(
    sb: Sandbox,
    k: int,
    az: str = AZS[0],
    *,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    name: str | None = None,
    timeout: float = 5.0,
    instance_type: str = "m5.large",
) -> str:
    """A Ready node whose not-ready taint the node lifecycle controller has already removed."""
    name = add_node(
        sb, k, az, labels=labels, taints=taints, ready=True, name=name, instance_type=instance_type
    )
    sb.wait_for(
        lambda: (
            not any(
                t["key"] == objects.TAINT_NODE_NOT_READY
                for t in sb.store.require("nodes", None, name)["spec"].get("taints") or []
            )
        ),
        timeout=timeout,
        what=f"not-ready taint removed from {name}",
    )
    return name


def set_node_ready(sb: Sandbox, name: str, status: str = "True") -> None:
    """What the kubelet's status update does: flip the Ready condition ("True", "False", "Unknown")."""
    reasons = {"True": "KubeletReady", "False": "KubeletNotReady", "Unknown": "NodeStatusUnknown"}

    def flip(n: Obj) -> Obj:
        for c in n["status"]["conditions"]:
            if c["type"] == "Ready" and c["status"] != status:
                c.update(status=status, reason=reasons[status], lastTransitionTime=timestamp())
        return n

    sb.store.mutate("nodes", None, name, flip)


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    t: Obj = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


# --- pod templates and workloads ------------------------------------------------------------------
def pod_spec(**overrides: Any) -> Obj:
    spec: Obj = {
        "containers": [{"name": "app", "image": IMAGE, "ports": [{"containerPort": 80}]}],
        "terminationGracePeriodSeconds": 30,
    }
    return _deep_update(spec, overrides)


def sized_spec(cpu: str, memory: str = "64Mi", **overrides: Any) -> Obj:
    """pod_spec whose container requests `cpu` and `memory` (what the scheduler fits by)."""
    container = {
        "name": "app",
        "image": IMAGE,
        "ports": [{"containerPort": 80}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
    }
    return pod_spec(containers=[container], **overrides)


def pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    spec: Obj | None = None,
    **spec_overrides: Any,
) -> Obj:
    """A bare (unmanaged) pod manifest."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {"app": name})},
        "spec": spec or pod_spec(**spec_overrides),
    }


def never_ready_gate() -> list[Obj]:
    """A readiness gate nobody sets: the pod runs but never turns Ready (a failing probe, in effect)."""
    return [{"conditionType": "sandbox.example.com/never"}]


def deployment(
    name: str,
    replicas: int = 2,
    *,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    template_spec: Obj | None = None,
    **spec_overrides: Any,
) -> Obj:
    labels = dict(labels or {"app": name})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": _deep_update(
            {
                "replicas": replicas,
                "selector": {"matchLabels": dict(labels)},
                "template": {"metadata": {"labels": dict(labels)}, "spec": template_spec or pod_spec()},
            },
            spec_overrides,
        ),
    }


def statefulset(
    name: str,
    replicas: int = 3,
    *,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    claim: str | None = "data",
    storage: str = "1Gi",
    policy: str = "OrderedReady",
    service_name: str | None = None,
    template_spec: Obj | None = None,
    **spec_overrides: Any,
) -> Obj:
    """A StatefulSet whose containers mount `claim`, provided only by volumeClaimTemplates (as with
    redis charts): the controller injects the PVC volume, the template does not carry it."""
    labels = dict(labels or {"app": name})
    tspec = template_spec or pod_spec()
    if claim:
        for c in tspec["containers"]:
            c.setdefault("volumeMounts", []).append({"name": claim, "mountPath": "/data"})
    spec: Obj = {
        "replicas": replicas,
        "serviceName": service_name or name,
        "podManagementPolicy": policy,
        "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": {"labels": dict(labels)}, "spec": tspec},
    }
    if claim:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "gp3",
                    "resources": {"requests": {"storage": storage}},
                },
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": _deep_update(spec, spec_overrides),
    }


def daemonset(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    namespace: str = "kube-system",
    tolerations: list[Obj] | None = None,
    template_spec: Obj | None = None,
    **spec_overrides: Any,
) -> Obj:
    labels = dict(labels or {"app": name})
    tspec = template_spec or pod_spec()
    if tolerations is not None:
        tspec["tolerations"] = tolerations
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": _deep_update(
            {
                "selector": {"matchLabels": dict(labels)},
                "template": {"metadata": {"labels": dict(labels)}, "spec": tspec},
            },
            spec_overrides,
        ),
    }


_UNSET: Any = object()


def pdb(
    name: str,
    *,
    selector: Obj | None = _UNSET,
    match_labels: dict[str, str] | None = None,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    unhealthy_pod_eviction_policy: str | None = None,
    namespace: str = "default",
) -> Obj:
    """A policy/v1 PodDisruptionBudget. `selector=None` omits the selector (matches nothing in
    policy/v1); `selector={}` matches every pod in the namespace; default: matchLabels app=<name>."""
    spec: Obj = {}
    if selector is _UNSET:
        spec["selector"] = {"matchLabels": dict(match_labels or {"app": name})}
    elif selector is not None:
        spec["selector"] = selector
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if unhealthy_pod_eviction_policy:
        spec["unhealthyPodEvictionPolicy"] = unhealthy_pod_eviction_policy
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def service(
    name: str, *, selector: dict[str, str] | None = None, port: int = 80, namespace: str = "default"
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": dict(selector or {"app": name}), "ports": [{"name": "http", "port": port}]},
    }


def zone_affinity(*zones: str) -> Obj:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": LABEL_TOPOLOGY_ZONE, "operator": "In", "values": list(zones)}
                        ]
                    }
                ]
            }
        }
    }


# --- reading state and waiting ---------------------------------------------------------------------
def pod_ready(p: Obj) -> bool:
    return objects.pod_is_ready(p)


def ready_pods(sb: Sandbox, namespace: str = "default", selector: str | None = None) -> list[Obj]:
    return [
        p for p in sb.pods(namespace, selector) if pod_ready(p) and "deletionTimestamp" not in p["metadata"]
    ]


def wait_ready(
    sb: Sandbox, n: int, namespace: str = "default", selector: str | None = None, *, timeout: float = 10.0
) -> list[Obj]:
    """Wait until exactly `n` non-terminating pods matching `selector` are Ready; return them."""
    found: list[Obj] = []

    def ok() -> bool:
        found[:] = ready_pods(sb, namespace, selector)
        return len(found) == n

    sb.wait_for(ok, timeout=timeout, what=f"{n} ready pods matching {selector!r} in {namespace}")
    return list(found)


def eventually(check: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.05) -> T:
    """Retry an assertion until it passes; on timeout re-raise its last AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


def pdb_synced(sb: Sandbox, name: str, namespace: str = "default") -> Obj:
    """Wait for the disruption controller to have processed the PDB's current generation."""

    def synced() -> bool:
        p = sb.store.get("poddisruptionbudgets", namespace, name)
        return bool(p and p["status"].get("observedGeneration") == p["metadata"]["generation"])

    sb.wait_for(synced, timeout=5, what=f"PDB {name} synced")
    return sb.store.require("poddisruptionbudgets", namespace, name)


def freeze_controllers(sb: Sandbox) -> None:
    """Stop every controller (scheduler, kubelet, disruption...): the API keeps serving, the state
    stays exactly as arranged. For tests that must observe what the API alone does."""
    if sb in _FROZEN:
        return
    sb.settle()
    sb.manager.stop()
    _FROZEN.add(sb)


_FROZEN: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def job_pod(
    sb: Sandbox, name: str, node: str, *, namespace: str = "default", annotations: Obj | None = None
) -> Obj:
    """A Job and its one pod, placed on `node` (the sandbox has no Job controller: the test ends
    the pod with `finish_pod`, as the kubelet would when its container exits)."""
    job = sb.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": pod_spec(restartPolicy="Never")}},
        }
    )
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": job["metadata"]["uid"],
        "controller": True,
    }
    return sb.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"job-name": name},
                "annotations": dict(annotations or {}),
                "ownerReferences": [owner],
            },
            "spec": pod_spec(nodeName=node, restartPolicy="Never"),
        }
    )


def finish_pod(sb: Sandbox, namespace: str, name: str, phase: str = "Succeeded", exit_code: int = 0) -> None:
    """What the kubelet reports for a finished pod, written through PATCH pods/status."""
    pod = sb.store.require("pods", namespace, name)
    now = timestamp()
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": now,
        "finishedAt": now,
    }
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": f"{c['image']}@sha256:{'0' * 64}",
            "containerID": f"containerd://{'1' * 64}",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"terminated": terminated},
            "lastState": {},
        }
        for c in pod["spec"]["containers"]
    ]
    sb.registry.patch(
        "pods",
        namespace,
        name,
        "application/merge-patch+json",
        {"status": {"phase": phase, "containerStatuses": statuses}},
        subresource="status",
    )
