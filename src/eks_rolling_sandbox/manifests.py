"""Small manifest builders for scenarios, tests and benchmarks (plain dicts, as `kubectl apply` takes).

Upstream: the core/v1, apps/v1 and policy/v1 objects as `kubectl apply` takes them.
"""

from __future__ import annotations

from typing import Any

# Plain dicts, spelled out: this module sits beside api/ in the sandbox's layers, so it cannot
# import api/store's Obj alias.


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


# What a web server behind a load balancer carries on EKS: a readiness probe, and a preStop
# sleep so the endpoint and the load balancer stop sending before SIGTERM. The realistic timing
# profile honours both (controllers/kubelet.py); the fast one ignores them.
READINESS_PROBE = {
    "httpGet": {"path": "/", "port": 80},
    "initialDelaySeconds": 5,
    "periodSeconds": 5,
    "failureThreshold": 3,
}
PRESTOP_SLEEP_S = 10


def pod_template(
    labels: dict[str, str], *, image: str = "public.ecr.aws/nginx/nginx:1.27", **spec: Any
) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": image,
        "readinessProbe": dict(READINESS_PROBE),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}},
    }
    return {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container], **spec}}


def deployment(
    name: str,
    ns: str,
    replicas: int,
    *,
    labels: dict[str, str] | None = None,
    image: str = "public.ecr.aws/nginx/nginx:1.27",
    **spec: Any,
) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels, image=image, **spec),
        },
    }


def pdb(
    name: str,
    ns: str,
    *,
    selector: dict[str, str],
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": dict(selector)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def daemonset(
    name: str, ns: str, *, tolerate_all: bool = True, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = labels or {"k8s-app": name}
    spec: dict[str, Any] = {"tolerations": [{"operator": "Exists"}]} if tolerate_all else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels, image=f"public.ecr.aws/eks/{name}:v1", **spec),
        },
    }


def service(
    name: str,
    ns: str,
    *,
    selector: dict[str, str],
    port: int = 80,
    type_: str = "ClusterIP",
    headless: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": dict(selector),
        "ports": [{"name": "http", "port": port, "targetPort": port}],
        "type": type_,
    }
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}
