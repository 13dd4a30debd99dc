"""The demo's web traffic: the ingress pods as real HTTP servers, a load balancer in front of
their LoadBalancer Service, and a bounded client through it for the whole roll; then a baseline
in the same world: one node drained the way a plain `kubectl drain` + terminate does it (no
exclude-from-external-load-balancers label, no deregistration wait), measured the same way.

No upstream counterpart: the users of a Service during a node roll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..env import SandboxEnv
from ..traffic.client import LoadClient
from ..traffic.http_pods import HttpRuntime, TrafficLoop
from ..traffic.lb import LoadBalancer
from ..traffic.loop_lag import LoopLag

SERVICE = ("ingress-nginx", "ingress-nginx-controller")
# Sent through the load balancer for the whole roll: >= 5,000 requests in the demo's roll (90 s
# or more), light enough for a 2-core machine: the client, LB and pod servers share the process
# (and its GIL) with the state machine's interpreter and the controllers.
RATE_PER_S = 70.0
CONCURRENCY = 16
# A client that fell below half its rate (starved by the machine) would hide failures: the demo
# fails then. (`make demo`'s roll lasts long enough for >= 5,000 requests at this rate.)
MIN_SENT_FRACTION = 0.5


class WebLoad:
    def __init__(self, env: SandboxEnv, *, scale: float | None = None) -> None:
        # The env's ONE time factor scales the load balancer's clocks too.
        self.env, self.scale = env, env.time_factor if scale is None else scale
        self.loop = TrafficLoop()
        # A profile whose kubelet runs preStop (realistic) owns it; else the server sleeps it.
        in_kubelet = env.sandbox.timings.spec_scale is not None
        self.runtime = HttpRuntime(
            env.sandbox.store, self.loop, scale=self.scale, prestop_in_kubelet=in_kubelet
        )
        env.sandbox.kubelet.add_runtime(self.runtime)  # before the scenario's pods start
        self.lb: LoadBalancer | None = None
        self.client: LoadClient | None = None
        self.lag: LoopLag | None = None
        self._t0 = time.monotonic()

    def start(self, say: Callable[[str], None]) -> WebLoad:
        sb = self.env.sandbox
        self.lb = LoadBalancer(sb.store, self.loop, *SERVICE, scale=self.scale).start()
        lb = self.lb
        sb.wait_for(
            lambda: lb.states() and all(s == "healthy" for s in lb.states().values()),
            timeout=30,
            what="load balancer targets healthy",
        )
        s = lb.settings
        say(
            f"  web traffic: {RATE_PER_S:.0f} req/s through a {s.mode}-mode load balancer ({len(lb.targets)} targets, health checks {s.interval_s:.0f}s x{s.healthy_threshold}/{s.unhealthy_threshold}, deregistration delay {s.deregistration_delay_s:.0f}s, x{self.scale} wall clock) to {SERVICE[0]}/{SERVICE[1]}"
        )
        self.client = LoadClient(self.loop, lb.address, rate=RATE_PER_S, concurrency=CONCURRENCY).start()
        self.lag = LoopLag(self.loop).start()
        self._t0 = time.monotonic()
        return self

    def finish_roll(self) -> dict[str, Any]:
        assert self.client is not None and self.lb is not None
        assert self.lag is not None
        counts = self.client.stop()
        self.client = None
        seconds = time.monotonic() - self._t0
        return {
            **counts,
            # How late the loop serving client, LB and pods ran: explains a failure, never hides one.
            "loop_lag": self.lag.stop(),
            "rate_per_s": RATE_PER_S,
            "seconds": round(seconds, 1),
            "min_requests": int(RATE_PER_S * seconds * MIN_SENT_FRACTION),
            "load_balancer": asdict(self.lb.settings),
            "time_factor": self.scale,
        }

    def baseline(self, say: Callable[[str], None], timeout_s: float = 60.0) -> dict[str, Any]:
        """Drain one node and terminate it at once, without exclusion or deregistration wait,
        while the same client runs: what the tool's exclude + wait steps avoid."""
        assert self.lb is not None
        lb, sb = self.lb, self.env.sandbox
        # A node serving traffic with no ingress pod (only the node's own exclusion, not the pods'
        # endpoints, keeps traffic away from it) and no Redis pod (the Redis checks are done).
        busy = {p["spec"].get("nodeName") for ns in (SERVICE[0], "redis") for p in sb.pods(ns)}
        node = next(
            (
                n
                for n in sorted(lb.states())
                if n not in busy and lb.states().get(n) == "healthy" and sb.store.get("nodes", None, n)
            ),
            None,
        )
        if node is None:  # reported, and traffic.baseline.failed then fails the demo
            return {"requests": 0, "failed": 0, "error": f"no node without {SERVICE[0]} or redis pods"}
        # providerID aws:///<az>/<instance id>, as the AWS cloud provider sets it
        iid = sb.store.require("nodes", None, node)["spec"]["providerID"].rsplit("/", 1)[-1]
        say(f"  baseline: drain {node} and terminate {iid} without exclude label or deregistration wait")
        self.client = LoadClient(self.loop, lb.address, rate=RATE_PER_S, concurrency=CONCURRENCY).start()
        t0 = time.monotonic()
        try:
            time.sleep(1.0)  # traffic flowing through every target before the drain
            self._drain(node, timeout_s)
            self.env.aws("autoscaling").terminate_instance_in_auto_scaling_group(
                InstanceId=iid, ShouldDecrementDesiredCapacity=False
            )
            # Until the load balancer stops sending to the node (health checks or the node's
            # deletion), then a little longer.
            sb.wait_for(
                lambda: lb.states().get(node) in (None, "unhealthy", "draining"),
                timeout=timeout_s,
                what=f"load balancer to stop sending to {node}",
            )
            time.sleep(1.0)
        finally:
            counts = self.client.stop()
            self.client = None
        return {**counts, "node": node, "duration_s": round(time.monotonic() - t0, 1)}

    def _drain(self, node: str, timeout_s: float) -> None:
        """kubectl drain: cordon, evict (retrying 429s) every pod but DaemonSet ones, wait gone."""
        sb = self.env.sandbox
        with sb.client() as api:
            core = client.CoreV1Api(api)
            core.patch_node(node, {"spec": {"unschedulable": True}})
            deadline = time.monotonic() + timeout_s
            while True:
                pods = [
                    p
                    for p in sb.store.by_index("pods", "node", node)
                    if not any(r["kind"] == "DaemonSet" for r in p["metadata"].get("ownerReferences") or [])
                ]
                if not pods:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"baseline drain of {node}: {len(pods)} pods left")
                for p in pods:
                    if "deletionTimestamp" in p["metadata"]:
                        continue
                    md = p["metadata"]
                    body = client.V1Eviction(
                        metadata=client.V1ObjectMeta(name=md["name"], namespace=md["namespace"])
                    )
                    try:
                        core.create_namespaced_pod_eviction(md["name"], md["namespace"], body)
                    except ApiException as exc:
                        if exc.status not in (404, 429):
                            raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop()
        if self.lb is not None:
            self.lb.stop()
        self.runtime.close()
        self.loop.close()


def traffic_failures(traffic: dict[str, Any]) -> list[tuple[bool, str, Any]]:
    """(ok, field, value) for report_failures."""
    base = traffic.get("baseline") or {}
    return [
        (traffic["failed"] == 0, "traffic.failed", f"{traffic['failed']} {traffic['failed_by_kind']}"),
        (
            traffic["requests"] >= traffic["min_requests"],
            "traffic.requests",
            f"{traffic['requests']} < {traffic['min_requests']} (half the rate: the client was starved)",
        ),
        # A baseline without failures shows nothing: the comparison would be a claim, not a measure.
        (base.get("failed", 0) > 0, "traffic.baseline.failed", base.get("failed", "missing")),
    ]
