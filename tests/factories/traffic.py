"""Builders for traffic tests: a LoadBalancer Service with its AWS annotations, and a web
Deployment whose pods sleep in preStop."""

from __future__ import annotations

from typing import Any

from eks_rolling.labels import (
    AWS_LB_DEREGISTRATION_DELAY,
    AWS_LB_HC_HEALTHY,
    AWS_LB_HC_INTERVAL,
    AWS_LB_HC_UNHEALTHY,
    AWS_LB_TARGET_TYPE,
    AWS_LB_TG_ATTRIBUTES,
)
from eks_rolling_sandbox.api.store import Obj

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
        AWS_LB_TARGET_TYPE: mode,
        AWS_LB_HC_INTERVAL: str(interval_s),
        AWS_LB_HC_HEALTHY: str(healthy),
        AWS_LB_HC_UNHEALTHY: str(unhealthy),
        AWS_LB_TG_ATTRIBUTES: f"{AWS_LB_DEREGISTRATION_DELAY}={deregistration_delay_s}",
    }
    return svc


def lb_port(svc: Obj | None = None) -> int:
    """The port the web pods serve on (the Service's target port)."""
    port = (svc or lb_service())["spec"]["ports"][0]
    return int(port.get("targetPort") or port["port"])


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
