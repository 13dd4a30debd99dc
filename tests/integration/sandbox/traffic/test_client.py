"""Positive controls for the traffic counters: each failure kind the demo reports is counted when
it happens (a port nobody listens on, a server that resets, one that never answers, a 5xx)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from eks_rolling_sandbox.traffic.client import LoadClient, one_request
from eks_rolling_sandbox.traffic.http_pods import TrafficLoop, response

HOST = "127.0.0.1"


@pytest.fixture
def loop() -> Iterator[TrafficLoop]:
    loop = TrafficLoop()
    yield loop
    loop.close()


def _serve(loop: TrafficLoop, behaviour: str) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if behaviour == "reset":
            writer.transport.abort()
            return
        if behaviour == "hang":
            await asyncio.sleep(5)
        writer.write(response(502 if behaviour == "5xx" else 200, behaviour))
        await writer.drain()
        writer.close()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, HOST, 0)

    server = loop.run(start())
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    "behaviour,kind", [("ok", None), ("reset", "reset"), ("hang", "timeout"), ("5xx", "5xx")]
)
def test_each_failure_kind_is_counted(loop: TrafficLoop, behaviour: str, kind: str | None) -> None:
    server, port = _serve(loop, behaviour)
    try:
        client = LoadClient(loop, (HOST, port), rate=50, concurrency=5, timeout_s=0.3).start()
        loop.run(asyncio.sleep(0.5))
        counts = client.stop()
    finally:
        loop.loop.call_soon_threadsafe(server.close)
    assert counts["requests"] >= 5
    if kind is None:
        assert counts["failed"] == 0, counts
    else:
        assert counts["failed"] == counts["requests"] == counts["failed_by_kind"][kind], counts
        # Stamped "HH:MM:SS.mmm kind: detail", to be matched with the history's timestamps.
        assert re.fullmatch(rf"\d\d:\d\d:\d\d\.\d{{3}} {kind}: .+", counts["failure_samples"][0]), counts
    if behaviour == "hang":
        assert counts["max_latency_ms"] >= 300


def test_a_port_nobody_listens_on_is_refused(loop: TrafficLoop) -> None:
    server, port = _serve(loop, "ok")
    loop.loop.call_soon_threadsafe(server.close)
    loop.run(asyncio.sleep(0.1))
    kind, _ = loop.run(one_request(HOST, port, 1.0))
    assert kind == "refused"
