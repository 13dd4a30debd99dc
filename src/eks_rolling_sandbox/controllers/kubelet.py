"""A simulated kubelet for every node (the kwok "pod-ready" stage, plus real processes).

Pods bound to a Ready node start after `pod_start_s` with a fresh IP from the node's range
(`pod_ip`: every node owns 1,024 loopback addresses, so every reschedule changes the IP and every
IP is bindable), and turn Ready after `pod_ready_s` or, for pods backed by a real process, when the
process answers its probe. A terminating pod goes away after min(grace, `pod_exit_s`) or when its
process exits. In the realistic profile (`Timings.spec_scale` set) the pod spec's own numbers rule,
on the scaled clock: Ready after the readiness probe's initialDelaySeconds plus the probe's phase
within periodSeconds (the simulated app always passes, so failureThreshold never trips), and on
delete the preStop hook (lifecycle.preStop.sleep.seconds or an exec `sleep N`) runs first, then
SIGTERM, then the app takes `pod_exit_s` to exit; terminationGracePeriodSeconds bounds it all.

Hook point (for the traffic model): `on_terminating(pod)` when the kubelet starts a pod's
termination, `on_prestop_done(pod)` when its preStop has ended (SIGTERM is sent at that moment). On a node that is not Ready (instance gone) nothing progresses: terminating pods
stay Terminating until the node is deleted, as on a real cluster.

Upstream: kwok's pod stages (kustomize/stage/pod/fast) and the kubelet's pod lifecycle
(pkg/kubelet/kuberuntime graceful termination).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..api.errors import ApiError
from ..api.objects import (
    ADDRESSES_PER_NODE,
    condition,
    container_status,
    node_index,
    node_is_ready,
    pod_ip,
    pod_is_ready,
    set_condition,
)
from ..api.store import Obj, WatchEvent, timestamp
from .base import Controller, Manager, NamespacedKey

log = logging.getLogger(__name__)


class ProcessRuntime(Protocol):
    """Backs selected pods with real OS processes (the Redis hook)."""

    def wants(self, pod: Obj) -> bool: ...
    def start(self, pod: Obj, ip: str) -> None: ...
    def probe(self, pod: Obj) -> bool: ...
    def alive(self, pod: Obj) -> bool: ...
    def begin_stop(self, pod: Obj, grace_s: float) -> None: ...
    def stopped(self, pod: Obj) -> bool: ...
    def kill(self, uid: str) -> None: ...
    def running_uids(self) -> set[str]: ...


class Runtimes:
    """Several process runtimes behind one: each pod goes to the first that wants it (Redis pods
    to redis-server processes, pods behind a LoadBalancer Service to HTTP servers). The hook the
    kubelet calls when a pod starts, terminates (preStop, then SIGTERM) or is killed."""

    def __init__(self, runtimes: Iterable[ProcessRuntime] = ()) -> None:
        self._all: list[ProcessRuntime] = list(runtimes)

    def add(self, runtime: ProcessRuntime) -> None:
        self._all.append(runtime)

    def __bool__(self) -> bool:
        return bool(self._all)

    def _for(self, pod: Obj) -> ProcessRuntime | None:
        return next((r for r in self._all if r.wants(pod)), None)

    def wants(self, pod: Obj) -> bool:
        return self._for(pod) is not None

    def start(self, pod: Obj, ip: str) -> None:
        if (r := self._for(pod)) is not None:
            r.start(pod, ip)

    def probe(self, pod: Obj) -> bool:
        r = self._for(pod)
        return r is not None and r.probe(pod)

    def alive(self, pod: Obj) -> bool:
        r = self._for(pod)
        return r is not None and r.alive(pod)

    def begin_stop(self, pod: Obj, grace_s: float) -> None:
        if (r := self._for(pod)) is not None:
            r.begin_stop(pod, grace_s)

    def stopped(self, pod: Obj) -> bool:
        r = self._for(pod)
        return r is None or r.stopped(pod)

    def kill(self, uid: str) -> None:
        for r in self._all:
            r.kill(uid)

    def running_uids(self) -> set[str]:
        return set().union(*(r.running_uids() for r in self._all)) if self._all else set()


@dataclass
class _PodState:
    uid: str
    bound_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    term_at: float | None = None
    prestop_done: bool = False


class Kubelet(Controller[NamespacedKey]):
    name = "kubelet"

    def __init__(self, manager: Manager, runtime: ProcessRuntime | None = None) -> None:
        super().__init__(manager)
        self.runtime = Runtimes([runtime] if runtime is not None else [])
        self._state: dict[NamespacedKey, _PodState] = {}
        self._ip_counters: dict[int, int] = {}
        self.on_terminating: Callable[[Obj], Any] | None = None
        self.on_prestop_done: Callable[[Obj], Any] | None = None

    def add_runtime(self, runtime: ProcessRuntime) -> None:
        """Back more pods with real processes (before those pods start)."""
        self.runtime.add(runtime)

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "pods":
            if ev.obj["spec"].get("nodeName") or (ev.old and ev.old["spec"].get("nodeName")):
                return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
            return ()
        if ev.resource.plural == "nodes" and (
            ev.old is None or node_is_ready(ev.old) != node_is_ready(ev.obj) or ev.type == "DELETED"
        ):
            name = ev.obj["metadata"]["name"]
            return [
                (p["metadata"]["namespace"], p["metadata"]["name"])
                for p in self.store.by_index("pods", "node", name)
            ]
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in self.store.all("pods")
            if p["spec"].get("nodeName")
        ]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        pod = self.store.get("pods", ns, name)
        state = self._state.get(key)
        if pod is None or (state and state.uid != pod["metadata"]["uid"]):
            if state and self.runtime:
                self.runtime.kill(state.uid)  # a pod force-deleted under us: its process goes too
            self._state.pop(key, None)
            if pod is None:
                return None
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            return None
        node = self.store.get("nodes", None, node_name)
        uses_process = bool(self.runtime and self.runtime.wants(pod))
        if node is None or not node_is_ready(node):
            # The kubelet is down (instance gone or not booted): its processes are gone too.
            if uses_process and self.runtime:
                self.runtime.kill(pod["metadata"]["uid"])
            return None
        state = self._state.setdefault(key, _PodState(pod["metadata"]["uid"]))
        if "deletionTimestamp" in pod["metadata"]:
            return self._terminate(pod, state, uses_process)
        phase = pod.get("status", {}).get("phase", "Pending")
        now = time.monotonic()
        if phase == "Pending":
            wait = (
                state.bound_at + self.timings.jittered(self.timings.pod_start_s, f"{state.uid}:start") - now
            )
            if wait > 0:
                return wait
            self._start(pod, node, uses_process)
            state.started_at = now
            return self.timings.process_probe_s if uses_process else self._ready_after(pod)
        if phase != "Running":
            return None
        if state.started_at is None:
            state.started_at = now  # adopted after a sandbox restart of controllers
        if uses_process and self.runtime:
            if not self.runtime.alive(pod):
                self._restart(pod, node)
                return self.timings.process_probe_s
            ready = self.runtime.probe(pod)
            if ready != pod_is_ready(pod):
                self._set_ready(pod, ready)
            return self.timings.process_liveness_s if ready else self.timings.process_probe_s
        if not pod_is_ready(pod):
            wait = state.started_at + self._ready_after(pod) - now
            if wait > 0:
                return wait
            self._set_ready(pod, True)
        return None

    def _ready_after(self, pod: Obj) -> float:
        """Running -> Ready for a pod without a real process."""
        t = self.timings
        if t.spec_scale is None:
            return t.pod_ready_s
        probes = [c["readinessProbe"] for c in pod["spec"]["containers"] if c.get("readinessProbe")]
        if not probes:
            return t.pod_ready_s
        uid = pod["metadata"]["uid"]
        # The first probe runs at initialDelaySeconds and then every periodSeconds; where in its
        # period the pod started is the (seeded) per-pod jitter.
        phase = random.Random(f"{t.seed}:{uid}:probe").random()
        return max(
            t.spec_seconds(float(p.get("initialDelaySeconds", 0)) + phase * float(p.get("periodSeconds", 10)))
            for p in probes
        )

    # --- transitions ---------------------------------------------------------------------------
    def _next_ip(self, node: Obj) -> str:
        k = node_index(node)
        n = self._ip_counters.get(k, 1) + 1
        while (n & 255) in (0, 1, 255) or n >= ADDRESSES_PER_NODE:
            # Past the node's block, wrap round: that address's pod left long ago.
            n = 2 if n >= ADDRESSES_PER_NODE else n + 1
        self._ip_counters[k] = n
        return pod_ip(k, n)

    def _start(self, pod: Obj, node: Obj, uses_process: bool) -> None:
        ip = self._next_ip(node)
        host_ip = next(
            (a["address"] for a in node["status"].get("addresses", []) if a["type"] == "InternalIP"),
            "127.0.0.1",
        )
        now = timestamp()
        if uses_process and self.runtime:
            self.runtime.start(pod, ip)

        def run(cur: Obj) -> Obj:
            if cur["status"].get("phase") != "Pending" or "deletionTimestamp" in cur["metadata"]:
                raise ApiError(409, "Conflict", "pod changed")
            st = cur["status"]
            st.update(
                phase="Running",
                hostIP=host_ip,
                hostIPs=[{"ip": host_ip}],
                podIP=ip,
                podIPs=[{"ip": ip}],
                startTime=now,
            )
            conds = st.get("conditions", [])
            for ctype, ok in (
                ("PodReadyToStartContainers", True),
                ("Initialized", True),
                ("ContainersReady", False),
                ("Ready", False),
                ("PodScheduled", True),
            ):
                conds = set_condition(
                    conds,
                    condition(
                        ctype,
                        ok,
                        "" if ok else "ContainersNotReady",
                        "" if ok else "containers with unready status",
                    ),
                )
            st["conditions"] = conds
            st["containerStatuses"] = [
                container_status(c, running_since=now, ready=False) for c in cur["spec"]["containers"]
            ]
            return cur

        self.store.mutate(
            "pods",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            run,
            expect_uid=pod["metadata"]["uid"],
        )

    def _set_ready(self, pod: Obj, ready: bool) -> None:
        gates = [g["conditionType"] for g in pod["spec"].get("readinessGates") or []]

        def mark(cur: Obj) -> Obj:
            st = cur["status"]
            conds = st.get("conditions", [])
            gates_ok = all(any(c["type"] == g and c["status"] == "True" for c in conds) for g in gates)
            conds = set_condition(conds, condition("ContainersReady", ready))
            conds = set_condition(conds, condition("Ready", ready and gates_ok))
            st["conditions"] = conds
            for cs in st.get("containerStatuses", []):
                cs["ready"] = ready
            return cur

        self.store.mutate(
            "pods",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            mark,
            expect_uid=pod["metadata"]["uid"],
        )

    def _restart(self, pod: Obj, node: Obj) -> None:
        """The container died: kubelet restarts it in place (same pod, same IP)."""
        ip = pod["status"].get("podIP")
        log.info("restarting process of %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])
        if self.runtime and ip:
            self.runtime.start(pod, ip)

        def bump(cur: Obj) -> Obj:
            st = cur["status"]
            st["conditions"] = set_condition(
                set_condition(st.get("conditions", []), condition("ContainersReady", False)),
                condition("Ready", False),
            )
            for cs in st.get("containerStatuses", []):
                cs["ready"] = False
                cs["restartCount"] = cs.get("restartCount", 0) + 1
            return cur

        self.store.mutate(
            "pods",
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            bump,
            expect_uid=pod["metadata"]["uid"],
        )

    def _terminate(self, pod: Obj, state: _PodState, uses_process: bool) -> float | None:
        now = time.monotonic()
        t = self.timings
        stated = float(
            pod["metadata"].get(
                "deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30)
            )
        )
        # A real process (redis-server) shuts down in real time: its grace period is not scaled.
        grace = stated if uses_process else t.spec_seconds(stated)
        # The fast profile skips preStop; the realistic one runs it, bounded by the grace period.
        prestop = min(t.spec_seconds(prestop_seconds(pod)), grace) if t.spec_scale is not None else 0.0
        if state.term_at is None:
            state.term_at = now
            if self.on_terminating is not None:
                self.on_terminating(pod)
        if not state.prestop_done:
            left = state.term_at + prestop - now
            if left > 0:
                return left
            state.prestop_done = True
            if self.on_prestop_done is not None:
                self.on_prestop_done(pod)
            if uses_process and self.runtime:
                self.runtime.begin_stop(pod, max(grace - prestop, 0.0))  # SIGTERM
        if uses_process and self.runtime:
            if not self.runtime.stopped(pod):
                if now - state.term_at > grace:
                    self.runtime.kill(pod["metadata"]["uid"])
                return 0.05
        else:
            left = state.term_at + min(grace, prestop + t.pod_exit_s) - now
            if left > 0:
                return left
        try:
            self.store.delete(
                "pods",
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                expect_uid=pod["metadata"]["uid"],
            )
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
        self._state.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
        return None


_SLEEP_COMMAND = re.compile(r"(?:^|[\s;&/])sleep\s+(\d+(?:\.\d+)?)")


def prestop_seconds(pod: Obj) -> float:
    """How long the pod's preStop hooks run: the `sleep` action's seconds, or the N of an exec
    `sleep N` (the common `["sh", "-c", "sleep 15"]`); the longest container's hook counts."""
    longest = 0.0
    for c in pod["spec"]["containers"]:
        hook = (c.get("lifecycle") or {}).get("preStop") or {}
        if "sleep" in hook:
            longest = max(longest, float(hook["sleep"].get("seconds", 0)))
        elif "exec" in hook:
            m = _SLEEP_COMMAND.search(" ".join(hook["exec"].get("command") or []))
            if m:
                longest = max(longest, float(m.group(1)))
    return longest
