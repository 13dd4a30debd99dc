"""The load balancer model in front of real HTTP pods: instance mode honours the
exclude-from-external-load-balancers label (deregistration, draining) and a node lost while still
registered costs requests until health checks take it out; IP mode follows the endpoints, and a
pod that stops at once (no preStop) costs requests while the LB deregisters it. Each failure case
is the positive control of its passing twin: the same client, the same counters."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from eks_rolling.labels import EXCLUDE_FROM_EXTERNAL_LB, LABEL_HOSTNAME
from eks_rolling_sandbox.sandbox import Sandbox
from eks_rolling_sandbox.traffic.client import LoadClient
from eks_rolling_sandbox.traffic.http_pods import HttpRuntime, TrafficLoop
from eks_rolling_sandbox.traffic.lb import LoadBalancer, TargetGroupSettings
from tests.factories import k8s as b
from tests.factories import traffic as tf

NODES = (233, 234)  # pod IPs 127.<k>.x.y: away from other tests' nodes
SCALE = 0.1  # health checks every 10 s run every 1 s; deregistration delay 10 s runs 1 s


@pytest.fixture
def loop(sb: Sandbox) -> Iterator[TrafficLoop]:
    loop = TrafficLoop()
    runtime = HttpRuntime(sb.store, loop, scale=SCALE)
    sb.kubelet.add_runtime(runtime)
    yield loop
    runtime.close()
    loop.close()


def _world(sb: Sandbox, loop: TrafficLoop, *, mode: str, pre_stop_s: int, replicas: int) -> LoadBalancer:
    _front, back = (b.make_ready_node(sb, k) for k in NODES)
    sb.apply(tf.lb_service(mode=mode))
    # Every pod on the back node: the front node only forwards (kube-proxy), as a node does
    # once drained.
    sb.apply(tf.web_deployment(replicas=replicas, pre_stop_s=pre_stop_s, nodeSelector={LABEL_HOSTNAME: back}))
    b.wait_ready(sb, replicas, selector="app=web", timeout=10)
    lb = LoadBalancer(sb.store, loop, "default", "web", scale=SCALE).start()
    sb.wait_for(
        lambda: (
            len(lb.states()) == (2 if mode == "instance" else replicas)
            and all(s == "healthy" for s in lb.states().values())
        ),
        timeout=10,
        what="targets healthy",
    )
    return lb


def _label(sb: Sandbox, node: str) -> None:
    def add(cur: dict) -> dict:
        cur["metadata"].setdefault("labels", {})[EXCLUDE_FROM_EXTERNAL_LB] = "true"
        return cur

    sb.store.mutate("nodes", None, node, add)


def test_settings_come_from_the_service_annotations(sb: Sandbox) -> None:
    s = TargetGroupSettings.from_service(tf.lb_service(mode="ip", interval_s=15, deregistration_delay_s=45))
    assert (s.mode, s.interval_s, s.healthy_threshold, s.deregistration_delay_s) == ("ip", 15, 2, 45)
    # AWS's defaults for an HTTP target group when nothing is annotated
    d = TargetGroupSettings.from_service(b.service("plain"))
    assert (
        d.interval_s,
        d.timeout_s,
        d.healthy_threshold,
        d.unhealthy_threshold,
        d.deregistration_delay_s,
    ) == (
        30,
        5,
        5,
        2,
        300,
    )


def test_instance_mode_an_excluded_node_is_drained_before_it_goes(sb: Sandbox, loop: TrafficLoop) -> None:
    lb = _world(sb, loop, mode="instance", pre_stop_s=5, replicas=2)
    front = b.node_name(NODES[0])
    client = LoadClient(loop, lb.address, rate=100).start()
    time.sleep(0.5)
    # When the front node is labelled, and only after the deregistration delay its instance goes
    _label(sb, front)
    sb.wait_for(lambda: lb.states().get(front) in (None, "draining"), timeout=2, what="target draining")
    time.sleep(10 * SCALE)
    b.set_node_ready(sb, front, "Unknown")
    time.sleep(1.5)
    counts = client.stop()
    # Then no request failed, and the node left the target group
    assert counts["requests"] >= 200
    assert counts["failed"] == 0, counts
    assert front not in lb.states()


def test_instance_mode_a_node_lost_while_registered_costs_requests(sb: Sandbox, loop: TrafficLoop) -> None:
    lb = _world(sb, loop, mode="instance", pre_stop_s=5, replicas=2)
    front = b.node_name(NODES[0])
    client = LoadClient(loop, lb.address, rate=100).start()
    time.sleep(0.5)
    # When the front node's instance goes while the LB still sends to it (no label, no wait)
    b.set_node_ready(sb, front, "Unknown")
    sb.wait_for(lambda: lb.states().get(front) == "unhealthy", timeout=5, what="target unhealthy")
    time.sleep(0.5)
    counts = client.stop()
    # Then requests failed with gateway timeouts until the health checks took it out
    assert counts["failed"] > 0 and counts["failed_by_kind"]["5xx"] == counts["failed"], counts
    assert lb.targets[front].history == ["healthy", "unhealthy"]


@pytest.mark.parametrize(("pre_stop_s", "fails"), [(5, False), (0, True)])
def test_ip_mode_follows_endpoints_and_a_pod_without_pre_stop_costs_requests(
    sb: Sandbox, loop: TrafficLoop, pre_stop_s: int, fails: bool
) -> None:
    lb = _world(sb, loop, mode="ip", pre_stop_s=pre_stop_s, replicas=2)
    victim = b.ready_pods(sb, selector="app=web")[0]
    ip = victim["status"]["podIP"]
    assert set(lb.states()) == {p["status"]["podIP"] for p in b.ready_pods(sb, selector="app=web")}
    client = LoadClient(loop, lb.address, rate=150).start()
    time.sleep(0.5)
    # When a pod is deleted with its grace period
    sb.registry.delete("pods", "default", victim["metadata"]["name"], {})
    sb.wait_for(lambda: ip not in lb.states(), timeout=5, what="pod IP deregistered")
    time.sleep(0.5)
    counts = client.stop()
    # Then with a preStop sleep longer than the LB's reaction nothing fails; without, the LB still
    # sends to the closed pod for a moment: 502s
    if fails:
        assert counts["failed"] > 0 and counts["failed_by_kind"]["5xx"] == counts["failed"], counts
    else:
        assert counts["failed"] == 0, counts


class _StallingLoadBalancer(LoadBalancer):
    """Blocks its loop's thread as each health check begins, as a starved thread stalls."""

    stall_s = 0.0
    stalls = 0

    async def _exchange(self, route: str | None, request: bytes) -> bytes:
        if self.stall_s and request.startswith(b"GET /healthz"):
            self.stalls += 1
            time.sleep(self.stall_s)
        return await super()._exchange(route, request)


def test_a_stalled_event_loop_does_not_fail_the_health_checks_of_live_targets(
    sb: Sandbox, loop: TrafficLoop
) -> None:
    """On a loaded machine the loop serving LB and pods stalls for longer than the (compressed)
    health check timeout, where a real LB's checks would have passed. Counting those timeouts
    marked every target unhealthy together, and the LB then failed open to every registered
    target, a dead one included (a `make demo` run's 504s)."""
    lb = _world(sb, loop, mode="instance", pre_stop_s=0, replicas=2)
    lb.stop()
    stalling = _StallingLoadBalancer(sb.store, loop, "default", "web", scale=SCALE).start()
    try:
        sb.wait_for(
            lambda: set(stalling.states().values()) == {"healthy"}, timeout=10, what="targets healthy"
        )
        # When every health check of 3 rounds starts with a stall of 1.5x the check timeout
        stalling.stall_s = 1.5 * stalling.settings.timeout_s * SCALE
        checks = 3 * len(stalling.targets)
        sb.wait_for(lambda: stalling.stalls >= checks, timeout=15, what=f"{checks} stalled checks")
        stalling.stall_s = 0.0
        time.sleep(stalling.settings.interval_s * SCALE)
        # Then no live target was taken out
        histories = {t.id: t.history for t in stalling.targets.values()}
        assert all("unhealthy" not in h for h in histories.values()), histories
    finally:
        stalling.stop()
