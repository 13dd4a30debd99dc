"""A load balancer per `type: LoadBalancer` Service, as AWS's load balancers behave.

One HTTP listener on loopback; one target group, in either mode:
- instance (the default for Services): targets are the cluster's nodes on the NodePort, and a
  node forwards like kube-proxy to a ready endpoint of the Service (anywhere in the cluster).
  A node labelled `node.kubernetes.io/exclude-from-external-load-balancers` is deregistered, as
  the cloud provider's service controller does. A node whose instance is gone does not answer.
- ip (`service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip`): targets are the ready
  pod IPs of the Service's Endpoints, as the AWS Load Balancer Controller registers them.

Target states follow the ELB target group: `initial` until `healthy_threshold` consecutive health
checks pass, `unhealthy` after `unhealthy_threshold` consecutive failures, `draining` for the
deregistration delay after deregistration (no new requests; in-flight ones finish; completes at
once when nothing is in flight). With no healthy target the LB fails open to every registered
one. A target that refuses or resets gives the client 502; one that does not answer within the
connect timeout, 504. Sources (AWS docs, Elastic Load Balancing):
- docs.aws.amazon.com/elasticloadbalancing/latest/application/modify-target-group-health-settings.html
  (deregistration delay: default 300 s, `draining`, immediate when no in-flight requests; a target
  that closes connections while draining gives clients 5xx)
- docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
  (HealthCheckIntervalSeconds default 30, HealthCheckTimeoutSeconds 5, HealthyThresholdCount 5,
  UnhealthyThresholdCount 2 for HTTP target groups)
- docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeregisterTargets.html
  (deregistering targets get no new requests; connection draining for in-flight traffic)
- docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html
  (502: the target reset or refused the connection; 504: no connection within the timeout)
Settings come from the Service's annotations (the AWS Load Balancer Controller's names).
Every duration is in real-world seconds and runs at `scale` of the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eks_rolling.labels import (
    AWS_LB_DEREGISTRATION_DELAY,
    AWS_LB_HC_HEALTHY,
    AWS_LB_HC_INTERVAL,
    AWS_LB_HC_TIMEOUT,
    AWS_LB_HC_UNHEALTHY,
    AWS_LB_TARGET_TYPE,
    AWS_LB_TG_ATTRIBUTES,
    EXCLUDE_FROM_EXTERNAL_LB,
)

from ..api.objects import node_is_ready
from ..api.store import Obj, Store, WatchEvent
from .http_pods import DEFAULT_SCALE, TrafficLoop, read_request, response

log = logging.getLogger(__name__)


class TargetDown(Exception):
    """The target did not answer within the connect timeout (504)."""


@dataclass(frozen=True)
class TargetGroupSettings:
    mode: str = "instance"
    interval_s: float = 30.0
    timeout_s: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    deregistration_delay_s: float = 300.0
    connect_timeout_s: float = 10.0  # ALB's connection timeout to a target
    sync_s: float = 1.0  # how soon the controller sees a node or endpoint change

    @classmethod
    def from_service(cls, svc: Obj) -> TargetGroupSettings:
        ann = svc["metadata"].get("annotations") or {}
        attrs = dict(kv.split("=", 1) for kv in (ann.get(AWS_LB_TG_ATTRIBUTES) or "").split(",") if "=" in kv)
        base = cls()
        return cls(
            mode=ann.get(AWS_LB_TARGET_TYPE, base.mode),
            interval_s=float(ann.get(AWS_LB_HC_INTERVAL, base.interval_s)),
            timeout_s=float(ann.get(AWS_LB_HC_TIMEOUT, base.timeout_s)),
            healthy_threshold=int(ann.get(AWS_LB_HC_HEALTHY, base.healthy_threshold)),
            unhealthy_threshold=int(ann.get(AWS_LB_HC_UNHEALTHY, base.unhealthy_threshold)),
            deregistration_delay_s=float(attrs.get(AWS_LB_DEREGISTRATION_DELAY, base.deregistration_delay_s)),
        )


@dataclass
class Target:
    id: str  # node name (instance mode) or pod IP (ip mode)
    state: str = "initial"  # initial | healthy | unhealthy (health), see `routable` for draining
    passes: int = 0
    fails: int = 0
    in_flight: int = 0
    leave_at: float | None = None  # monotonic time the LB stops sending new requests to it
    history: list[str] = field(default_factory=list)

    def set(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.history.append(state)

    def draining(self, now: float) -> bool:
        return self.leave_at is not None and now >= self.leave_at


class LoadBalancer:
    """The LB of one Service; `start()` listens on 127.0.0.1 (see `address`).

    Registration is driven by the store's events and takes effect `sync_s` (scaled) after the
    change, by the clock, not by when the event loop gets to it: on a loaded machine the loop
    lags, and a lag the real controller does not have must not decide whether requests fail.
    """

    def __init__(
        self,
        store: Store,
        loop: TrafficLoop,
        namespace: str,
        name: str,
        *,
        scale: float = DEFAULT_SCALE,
        settings: TargetGroupSettings | None = None,
    ) -> None:
        self.store, self.loop, self.namespace, self.name, self.scale = store, loop, namespace, name, scale
        svc = store.require("services", namespace, name)
        self.settings = settings or TargetGroupSettings.from_service(svc)
        self.port = int(svc["spec"]["ports"][0].get("targetPort") or svc["spec"]["ports"][0]["port"])
        self.targets: dict[str, Target] = {}
        self._lock = threading.Lock()
        self._rr = itertools.count()
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LoadBalancer:
        async def go() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self._tasks = [
                asyncio.create_task(self._cleanup_loop()),
                asyncio.create_task(self._health_loop()),
            ]

        with self.store.lock:
            self._register(time.monotonic() - self.settings.sync_s * self.scale)
            self._unsubscribe = self.store.subscribe(self._on_event)
        self.loop.run(go())
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

        async def go() -> None:
            for t in self._tasks:
                t.cancel()
            if self._server is not None:
                self._server.close()

        if not self.loop.loop.is_closed():
            self.loop.run(go())

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def states(self) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            return {t.id: "draining" if t.draining(now) else t.state for t in self.targets.values()}

    # --- registration (the service controller / AWS Load Balancer Controller) -----------------
    def desired(self) -> set[str]:
        if self.settings.mode == "ip":
            return self.ready_endpoints()
        return {
            n["metadata"]["name"]
            for n in self.store.all("nodes")
            if EXCLUDE_FROM_EXTERNAL_LB not in (n["metadata"].get("labels") or {})
        }

    def ready_endpoints(self) -> set[str]:
        ep = self.store.get("endpoints", self.namespace, self.name)
        return {a["ip"] for s in (ep or {}).get("subsets") or [] for a in s.get("addresses") or []}

    def _on_event(self, ev: WatchEvent) -> None:
        """Store listener (under the store lock): a node or our endpoints changed."""
        plural = ev.resource.plural
        if plural == "nodes" or (
            plural == "endpoints"
            and ev.obj["metadata"].get("namespace") == self.namespace
            and ev.obj["metadata"]["name"] == self.name
        ):
            self._register(time.monotonic())

    def _register(self, changed_at: float) -> None:
        effective = changed_at + self.settings.sync_s * self.scale
        want = self.desired()
        with self._lock:
            for tid in want:
                t = self.targets.get(tid)
                if t is None:
                    self.targets[tid] = Target(tid)
                elif t.leave_at is not None:  # registered again before deregistration completed
                    t.leave_at = None
                    t.set("initial")
                    t.passes = t.fails = 0
            for t in self.targets.values():
                if t.id not in want and t.leave_at is None:
                    t.leave_at = effective

    async def _cleanup_loop(self) -> None:
        """Deregistration completes when nothing is in flight, or at the delay's end."""
        while True:
            await asyncio.sleep(self.settings.sync_s * self.scale)
            now = time.monotonic()
            with self._lock:
                for t in list(self.targets.values()):
                    if t.draining(now) and (
                        t.in_flight == 0
                        or now >= (t.leave_at or now) + self.settings.deregistration_delay_s * self.scale
                    ):
                        del self.targets[t.id]

    # --- health checks -------------------------------------------------------------------------
    async def _health_loop(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                due = [t for t in self.targets.values() if not t.draining(now)]
            await asyncio.gather(*(self._check(t) for t in due))
            await asyncio.sleep(self.settings.interval_s * self.scale)

    async def _check(self, t: Target) -> None:
        route = self._route(t.id)
        try:
            status = await asyncio.wait_for(
                self._exchange(route, b"GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n"),
                self.settings.timeout_s * self.scale,
            )
            ok = status.startswith(b"HTTP/1.1 200")
        except TimeoutError:
            if route:
                # A pod server on this loop answers in milliseconds: only a stalled loop (a loaded
                # machine, time compressed 20x) is this late. No evidence either way; counting it
                # would mark every target unhealthy at once and fail open to dead ones.
                return
            ok = False
        except (OSError, TargetDown, asyncio.IncompleteReadError):
            ok = False
        with self._lock:
            if ok:
                t.passes, t.fails = t.passes + 1, 0
                if t.state != "healthy" and t.passes >= self.settings.healthy_threshold:
                    t.set("healthy")
            else:
                t.fails, t.passes = t.fails + 1, 0
                if t.state != "unhealthy" and t.fails >= self.settings.unhealthy_threshold:
                    t.set("unhealthy")

    # --- forwarding ----------------------------------------------------------------------------
    def _route(self, target_id: str) -> str | None:
        """Where a connection to the target lands, decided when it is opened: the pod IP (ip
        mode), a ready endpoint chosen by the node's kube-proxy (instance mode), or None when the
        node is gone (nothing answers)."""
        if self.settings.mode == "ip":
            return target_id
        node = self.store.get("nodes", None, target_id)
        if node is None or not node_is_ready(node):
            return None
        ips = sorted(self.ready_endpoints())
        return ips[next(self._rr) % len(ips)] if ips else ""  # "": kube-proxy rejects

    async def _exchange(self, route: str | None, request: bytes) -> bytes:
        if route is None:
            await asyncio.sleep(self.settings.connect_timeout_s * self.scale)
            raise TargetDown("no answer within the connect timeout")
        if route == "":
            raise ConnectionRefusedError("kube-proxy: no ready endpoints")
        reader, writer = await asyncio.open_connection(route, self.port)
        try:
            writer.write(request)
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    def _pick(self) -> Target | None:
        now = time.monotonic()
        with self._lock:
            live = [t for t in self.targets.values() if not t.draining(now)]
            healthy = [t for t in live if t.state == "healthy"] or live  # fail open
            if not healthy:
                return None
            t = healthy[next(self._rr) % len(healthy)]
            t.in_flight += 1
            return t

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()
            return
        t = self._pick()
        if t is None:
            writer.write(response(503, "no registered targets"))
        else:
            route = self._route(t.id)
            try:
                writer.write(await self._forward(t.id, route, request))
            finally:
                with self._lock:
                    t.in_flight -= 1
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _forward(self, target_id: str, route: str | None, request: bytes) -> bytes:
        try:
            data = await self._exchange(route, request)
        except TargetDown:
            return response(504, f"target {target_id}: instance gone, no answer in the connect timeout")
        except OSError as exc:
            return response(502, f"target {target_id} ({route}): {exc!r}")
        if not data:
            return response(502, f"target {target_id} ({route}) closed the connection")
        return data
