"""Builders for traffic tests: a LoadBalancer Service with its AWS annotations, and a web
Deployment whose pods sleep in preStop."""

from __future__ import annotations

from typing import Any

from eks_rolling_sandbox.api.store import Obj
from eks_rolling_sandbox.traffic import lb

from . import k8s as b


def lb_service(
    name: str = "web",
    *,
    mode: str = "instance",
    interval_s: int = 10,
    healthy: int = 2,
    unhealthy: int = 2,
    deregistration_delay_s: int = 10,
    namespace: str = "default",
) -> Obj:
    svc = b.service(name, namespace=namespace)
    svc["spec"]["type"] = "LoadBalancer"
    svc["metadata"]["annotations"] = {
        lb.TARGET_TYPE: mode,
        lb.HC_INTERVAL: str(interval_s),
        lb.HC_HEALTHY: str(healthy),
        lb.HC_UNHEALTHY: str(unhealthy),
        lb.TG_ATTRIBUTES: f"deregistration_delay.timeout_seconds={deregistration_delay_s}",
    }
    return svc


def web_deployment(
    name: str = "web", replicas: int = 2, *, pre_stop_s: int = 5, grace_s: int = 30, **spec: Any
) -> Obj:
    container: Obj = {"name": "main", "image": "public.ecr.aws/nginx/nginx:1.27"}
    if pre_stop_s:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop_s}}}
    return b.deployment(
        name,
        replicas,
        template_spec={"containers": [container], "terminationGracePeriodSeconds": grace_s, **spec},
    )
