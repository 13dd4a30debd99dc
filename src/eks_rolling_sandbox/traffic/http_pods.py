"""Pods behind a LoadBalancer Service as real HTTP servers on their pod IP (loopback), one
asyncio loop for all of them so hundreds of pods stay light.

A server answers `GET` with 200 and the pod's name. On termination it behaves like a container
under the kubelet: the preStop hook runs first (`lifecycle.preStop.sleep.seconds`, or an exec
`sleep N`), the server keeps serving meanwhile; then SIGTERM: the listening socket closes (new
connections are refused), in-flight requests finish, the process exits. A kill (grace over, pod
force-deleted, node gone) resets every open connection.

Upstream: the kubelet's killContainer (pkg/kubelet/kuberuntime/kuberuntime_container.go:
preStop, then StopContainer with the remaining grace) and a web server's graceful shutdown
(Go's http.Server.Shutdown: listeners closed, every accepted connection served; nginx's SIGQUIT).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..api.selectors import label_selector_matches
from ..api.store import Obj, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

# The runner's factor for the state machine's Waits (runner.LocalRunner's default): sandbox
# durations given in real-world seconds run at this fraction of the wall clock.
DEFAULT_SCALE = 0.05


class TrafficLoop:
    """One asyncio loop in a daemon thread: pod servers, load balancers and clients run on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="traffic-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), timeout_s=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


def wall_stamp() -> str:
    """UTC HH:MM:SS.mmm: a traffic sample's time, to be matched with the execution history."""
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def pre_stop_seconds(pod: Obj) -> float:
    """The preStop sleep the pod spec asks for (sleep action or `sleep N` exec), 0 if none."""
    total = 0.0
    for c in pod["spec"].get("containers") or []:
        hook = (c.get("lifecycle") or {}).get("preStop") or {}
        if "sleep" in hook:
            total = max(total, float(hook["sleep"].get("seconds", 0)))
        cmd = (hook.get("exec") or {}).get("command") or []
        words = " ".join(cmd).replace(";", " ").replace("&&", " ").split()
        for i, w in enumerate(words[:-1]):
            if w == "sleep":
                with contextlib.suppress(ValueError):
                    total = max(total, float(words[i + 1]))
    return total


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request head (no body: the traffic is GETs)."""
    return await reader.readuntil(b"\r\n\r\n")


def response(status: int, body: str) -> bytes:
    reason = {200: "OK", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    data = body.encode()
    head = f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    return head.encode() + data


@dataclass
class PodServer:
    name: str
    ip: str
    port: int
    work_s: float
    server: asyncio.Server | None = None
    state: str = "running"  # running -> pre-stop -> draining -> exited (or killed)
    conns: set[asyncio.StreamWriter] = field(default_factory=set)
    in_flight: int = 0
    served: int = 0

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.ip, self.port, reuse_address=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns.add(writer)
        try:
            await read_request(reader)
            self.in_flight += 1
            try:
                await asyncio.sleep(self.work_s)
                writer.write(response(200, self.name))
                await writer.drain()
                self.served += 1
            finally:
                self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.conns.discard(writer)
            writer.close()

    async def terminate(self, pre_stop_s: float, grace_s: float) -> None:
        """preStop, then SIGTERM: stop accepting, finish in-flight, exit (killed at grace)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        self.state = "pre-stop"
        await asyncio.sleep(min(pre_stop_s, grace_s))
        if self.state == "killed":
            return
        self.state = "draining"
        if self.server is not None:
            self.server.close()  # the listening socket: new connections are refused
        # Every accepted connection is served, including one whose request is not read yet (Go's
        # Shutdown waits for connections in StateNew too): only the grace period cuts them.
        while (self.in_flight or self.conns) and loop.time() < deadline and self.state == "draining":
            await asyncio.sleep(0.005)
        if self.state == "draining":
            self.kill_now("exited")

    def kill_now(self, state: str = "killed") -> None:
        self.state = state
        if self.server is not None:
            self.server.close()
        for w in list(self.conns):
            w.transport.abort()  # RST: what a killed process's sockets send
        self.conns.clear()


class HttpRuntime:
    """The kubelet's runtime for pods selected by a `type: LoadBalancer` Service."""

    def __init__(
        self,
        store: Store,
        loop: TrafficLoop,
        *,
        scale: float = DEFAULT_SCALE,
        work_s: float = 0.002,
        prestop_in_kubelet: bool = False,
    ) -> None:
        # With a kubelet that runs preStop itself (the realistic profile), begin_stop is SIGTERM.
        self.prestop_in_kubelet = prestop_in_kubelet
        self.store, self.loop, self.scale, self.work_s = store, loop, scale, work_s
        self.servers: dict[str, PodServer] = {}
        self.closed = False

    def _port(self, pod: Obj) -> int | None:
        labels = pod["metadata"].get("labels") or {}
        for svc in self.store.list("services", pod["metadata"]["namespace"])[0]:
            spec = svc["spec"]
            if (
                spec.get("type") == "LoadBalancer"
                and spec.get("selector")
                and label_selector_matches({"matchLabels": spec["selector"]}, labels)
            ):
                port = spec["ports"][0]
                return int(port.get("targetPort") or port["port"])
        return None

    def wants(self, pod: Obj) -> bool:
        uid = pod["metadata"]["uid"]
        return uid in self.servers or self._port(pod) is not None

    def start(self, pod: Obj, ip: str) -> None:
        port = self._port(pod)
        if port is None:
            return
        uid = pod["metadata"]["uid"]
        old = self.servers.pop(uid, None)
        if old is not None:
            self.loop.loop.call_soon_threadsafe(old.kill_now)
        srv = PodServer(pod["metadata"]["name"], ip, port, self.work_s)
        if self.closed:  # the sandbox is shutting down: the kubelet may still start pods
            return
        try:
            self.loop.run(srv.open())
        except (OSError, RuntimeError, concurrent.futures.CancelledError) as exc:
            log.warning("pod %s: cannot listen on %s:%s: %s", srv.name, ip, port, exc)
            srv.state = "exited"
        self.servers[uid] = srv

    def probe(self, pod: Obj) -> bool:
        srv = self.servers.get(pod["metadata"]["uid"])
        return srv is not None and srv.state == "running"

    def alive(self, pod: Obj) -> bool:
        srv = self.servers.get(pod["metadata"]["uid"])
        return srv is not None and srv.state in ("running", "pre-stop", "draining")

    def begin_stop(self, pod: Obj, grace_s: float) -> None:
        srv = self.servers.get(pod["metadata"]["uid"])
        if srv is None or srv.state != "running" or self.closed:
            return
        if grace_s <= 0:  # deleted without grace: no preStop, no SIGTERM handling
            self.loop.loop.call_soon_threadsafe(srv.kill_now)
            return
        pre_stop_s = 0.0 if self.prestop_in_kubelet else pre_stop_seconds(pod) * self.scale
        self.loop.spawn(srv.terminate(pre_stop_s, grace_s))

    def stopped(self, pod: Obj) -> bool:
        srv = self.servers.get(pod["metadata"]["uid"])
        return srv is None or srv.state in ("exited", "killed")

    def kill(self, uid: str) -> None:
        srv = self.servers.pop(uid, None)
        if srv is not None and srv.state not in ("exited", "killed") and not self.loop.loop.is_closed():
            self.loop.loop.call_soon_threadsafe(srv.kill_now)

    def running_uids(self) -> set[str]:
        return {uid for uid, s in self.servers.items() if s.state not in ("exited", "killed")}

    def close(self) -> None:
        self.closed = True
        for uid in list(self.servers):
            self.kill(uid)
