"""Web pods as real HTTP servers on their pod IP, terminated as the kubelet terminates a container:
preStop first (still serving), then SIGTERM (new connections refused, in-flight requests finish);
a pod deleted without grace drops its connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from eks_rolling_sandbox.api.store import Obj
from eks_rolling_sandbox.sandbox import Sandbox
from eks_rolling_sandbox.traffic.client import one_request
from eks_rolling_sandbox.traffic.http_pods import HttpRuntime, TrafficLoop, pre_stop_seconds
from tests.factories import k8s as b
from tests.factories import traffic as tf

# Node indices of this module's nodes (pod IPs 127.<k>.x.y): away from other tests' nodes.
NODE = 231
SCALE = 0.1  # preStop 5 s runs as 0.5 s
PORT = tf.lb_port()


@pytest.fixture
def web(sb: Sandbox) -> Iterator[tuple[TrafficLoop, HttpRuntime]]:
    loop = TrafficLoop()
    runtime = HttpRuntime(sb.store, loop, scale=SCALE, work_s=0.6)
    sb.kubelet.add_runtime(runtime)
    b.make_ready_node(sb, NODE)
    sb.apply(tf.lb_service())
    yield loop, runtime
    runtime.close()
    loop.close()


def _ready_pod(sb: Sandbox) -> Obj:
    return b.wait_ready(sb, 1, selector="app=web", timeout=10)[0]


def _get(loop: TrafficLoop, ip: str, timeout_s: float = 3.0) -> tuple[str | None, str]:
    return loop.run(one_request(ip, PORT, timeout_s), timeout_s + 2)


def test_pre_stop_then_sigterm_refuses_new_connections_and_finishes_in_flight(
    sb: Sandbox, web: tuple[TrafficLoop, HttpRuntime]
) -> None:
    loop, runtime = web
    # Given a Ready web pod with a 5 s preStop sleep, answering on its pod IP
    sb.apply(tf.web_deployment(replicas=1, pre_stop_s=5))
    pod = _ready_pod(sb)
    ip = pod["status"]["podIP"]
    assert _get(loop, ip) == (None, "")
    # When a request is in flight as the pod is deleted with its grace period
    in_flight = asyncio.run_coroutine_threadsafe(one_request(ip, PORT, 5.0), loop.loop)
    time.sleep(0.1)
    sb.registry.delete("pods", "default", pod["metadata"]["name"], {})
    t0 = time.monotonic()
    # Then during preStop the pod still serves new requests
    assert _get(loop, ip) == (None, "")
    # and after it (SIGTERM) new connections are refused while the in-flight request finishes
    server = runtime.servers[pod["metadata"]["uid"]]
    sb.wait_for(lambda: server.state != "pre-stop", timeout=3, what="preStop over")
    assert time.monotonic() - t0 >= 5 * SCALE - 0.15
    kind, _ = _get(loop, ip)
    assert kind == "refused"
    assert in_flight.result(5) == (None, "")
    sb.wait_for(
        lambda: sb.store.get("pods", "default", pod["metadata"]["name"]) is None, timeout=5, what="pod gone"
    )
    assert server.state == "exited"


def test_a_connection_accepted_before_sigterm_is_served_though_its_request_comes_after(
    sb: Sandbox, web: tuple[TrafficLoop, HttpRuntime]
) -> None:
    """Go's Shutdown serves a connection still in StateNew: a load balancer that opened it just
    before the listener closed (the event loop late to read it) gets its answer, not a reset."""
    loop, runtime = web
    sb.apply(tf.web_deployment(replicas=1, pre_stop_s=5))
    pod = _ready_pod(sb)
    ip = pod["status"]["podIP"]

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(ip, PORT)

    async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
        await writer.drain()
        try:
            return await reader.read()
        finally:
            writer.close()

    # Given a connection accepted during preStop, with no request sent yet
    sb.registry.delete("pods", "default", pod["metadata"]["name"], {})
    reader, writer = loop.run(connect())
    server = runtime.servers[pod["metadata"]["uid"]]
    sb.wait_for(lambda: server.state == "pre-stop" and server.conns, timeout=3, what="accepted in preStop")
    # When SIGTERM closes the listener before the request arrives
    sb.wait_for(lambda: server.state != "pre-stop", timeout=3, what="preStop over")
    assert _get(loop, ip)[0] == "refused"
    # Then the request on the accepted connection is still answered
    assert loop.run(ask(reader, writer)).startswith(b"HTTP/1.1 200")
    sb.wait_for(lambda: server.state == "exited", timeout=5, what="server exited")


def test_a_pod_deleted_without_grace_resets_its_connections(
    sb: Sandbox, web: tuple[TrafficLoop, HttpRuntime]
) -> None:
    loop, _ = web
    sb.apply(tf.web_deployment(replicas=1, pre_stop_s=5))
    pod = _ready_pod(sb)
    ip = pod["status"]["podIP"]
    in_flight = asyncio.run_coroutine_threadsafe(one_request(ip, PORT, 5.0), loop.loop)
    time.sleep(0.1)
    # When the pod is force-deleted (grace 0): no preStop, no graceful shutdown
    sb.registry.delete("pods", "default", pod["metadata"]["name"], {"gracePeriodSeconds": 0})
    # Then the in-flight request is cut and the address no longer answers
    kind, _ = in_flight.result(5)
    assert kind == "reset"
    sb.wait_for(lambda: _get(loop, ip)[0] == "refused", timeout=3, what="address refusing")


def test_pre_stop_seconds_reads_the_sleep_action_and_an_exec_sleep() -> None:
    sleep_action = {"spec": {"containers": [{"lifecycle": {"preStop": {"sleep": {"seconds": 7}}}}]}}
    exec_sleep = {
        "spec": {"containers": [{"lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "sleep 12"]}}}}]}
    }
    assert pre_stop_seconds(sleep_action) == 7
    assert pre_stop_seconds(exec_sleep) == 12
    assert pre_stop_seconds({"spec": {"containers": [{}]}}) == 0
