"""The kubelet in the realistic profile: the pod spec's readiness probe, preStop and grace period
rule a pod's start and end, on the scaled clock; the fast profile keeps its fixed small delays."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eks_rolling_sandbox.controllers.kubelet import Kubelet
from eks_rolling_sandbox.sandbox import Sandbox
from eks_rolling_sandbox.timing import REALISTIC
from tests.factories import k8s as b

FACTOR = 0.05
REALISTIC_WALL = {
    k: v
    for k, v in vars(REALISTIC.timings(FACTOR)).items()
    if k in ("pod_start_s", "pod_ready_s", "pod_exit_s", "spec_scale", "jitter", "seed", "endpoint_lag_s")
}


def _container(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": "app", "image": b.IMAGE, **extra}]


def _kubelet(sb: Sandbox) -> Kubelet:
    return next(c for c in sb.manager.controllers if isinstance(c, Kubelet))


def _gone_after(sb: Sandbox, name: str, timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    sb.registry.delete("pods", "default", name)  # graceful, as kubectl delete and evictions are
    sb.wait_for(lambda: sb.store.get("pods", "default", name) is None, timeout=timeout, what=f"{name} gone")
    return time.monotonic() - t0


def _running(sb: Sandbox, name: str, **spec: Any) -> None:
    sb.apply(b.pod(name, **spec))
    sb.wait_for(
        lambda: b.pod_ready(sb.store.require("pods", "default", name)), timeout=10, what=f"{name} Ready"
    )


def test_prestop_runs_before_sigterm_and_the_grace_period_bounds_it(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(**REALISTIC_WALL)
    b.make_ready_node(sb, 1)
    seen: list[tuple[str, str, float]] = []
    kubelet = _kubelet(sb)
    kubelet.on_terminating = lambda p: seen.append(("terminating", p["metadata"]["name"], time.monotonic()))
    kubelet.on_prestop_done = lambda p: seen.append(("prestop-done", p["metadata"]["name"], time.monotonic()))
    _running(
        sb,
        "web",
        containers=_container(lifecycle={"preStop": {"sleep": {"seconds": 20}}}),
        terminationGracePeriodSeconds=60,
    )
    took = _gone_after(sb, "web")
    # 20 s preStop + 2 s app exit, x 0.05 = 1.1 s (the fast profile: 0.1 s, preStop ignored).
    assert 1.1 <= took < 2.5, took
    assert [(k, n) for k, n, _ in seen] == [("terminating", "web"), ("prestop-done", "web")]
    assert seen[1][2] - seen[0][2] >= 20 * FACTOR

    _running(
        sb,
        "short",
        containers=_container(lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "sleep 120"]}}}),
        terminationGracePeriodSeconds=10,
    )
    took = _gone_after(sb, "short")
    assert 10 * FACTOR <= took < 1.5, took  # grace (10 s) cuts the 120 s preStop


def test_readiness_follows_the_probe_initial_delay(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(**REALISTIC_WALL)
    b.make_ready_node(sb, 1)
    probe = {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 30, "periodSeconds": 10}
    t0 = time.monotonic()
    _running(sb, "probed", containers=_container(readinessProbe=probe))
    took = time.monotonic() - t0
    # start (8 s +-33 %) + 30 s initial delay + phase within the 10 s period, x 0.05.
    assert (5.3 + 30) * FACTOR <= took < (10.7 + 40) * FACTOR + 1.0, took


def test_fast_profile_ignores_prestop(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox()
    b.make_ready_node(sb, 1)
    _running(sb, "web", containers=_container(lifecycle={"preStop": {"sleep": {"seconds": 20}}}))
    assert _gone_after(sb, "web") < 0.8


def test_endpoints_follow_a_pod_change_after_the_profiles_lag(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(endpoint_lag_s=0.6)
    b.make_ready_node(sb, 1)
    sb.apply(b.service("web"))
    _running(sb, "web")
    t_ready = time.monotonic()

    def addresses() -> list[str]:
        ep = sb.store.get("endpoints", "default", "web")
        return [a["ip"] for s in (ep or {}).get("subsets") or [] for a in s.get("addresses") or []]

    sb.wait_for(lambda: bool(addresses()), timeout=5, what="web endpoint")
    assert time.monotonic() - t_ready >= 0.3  # at most the lag minus the pod's Ready transition
