"""A bounded HTTP client: `rate` requests per second, at most `concurrency` in flight, each on a
new connection through a load balancer, for as long as it runs. Counts requests, failures by kind
(refused, reset, 5xx, timeout, other) and the maximum latency.

No upstream counterpart: what users' browsers and services do to a Service during a roll.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .http_pods import TrafficLoop, wall_stamp

KINDS = ("refused", "reset", "5xx", "timeout", "other")
# Failures kept verbatim, each stamped with the wall clock at its answer: enough to match a burst
# with the execution history's timestamps (which step of which node was running then).
MAX_SAMPLES = 20


@dataclass
class TrafficCounts:
    requests: int = 0
    failed: int = 0
    failed_by_kind: Counter[str] = field(default_factory=Counter)
    max_latency_ms: float = 0.0
    samples: list[str] = field(default_factory=list)

    def add(self, latency_s: float, kind: str | None, detail: str = "") -> None:
        self.requests += 1
        self.max_latency_ms = max(self.max_latency_ms, latency_s * 1000)
        if kind is not None:
            self.failed += 1
            self.failed_by_kind[kind] += 1
            if len(self.samples) < MAX_SAMPLES:
                at = wall_stamp()
                self.samples.append(f"{at} {kind}: {detail}"[:180])

    def report(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "failed_by_kind": {k: self.failed_by_kind.get(k, 0) for k in KINDS},
            "max_latency_ms": round(self.max_latency_ms, 1),
            "failure_samples": list(self.samples),
        }


async def one_request(host: str, port: int, timeout_s: float) -> tuple[str | None, str]:
    """(failure kind or None, detail) for one GET on a fresh connection."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
    except TimeoutError:
        return "timeout", f"no answer in {timeout_s}s"
    except ConnectionRefusedError as exc:
        return "refused", str(exc)
    except ConnectionResetError as exc:
        return "reset", str(exc)
    except OSError as exc:
        return "other", repr(exc)
    if not data:
        return "reset", "connection closed without a response"
    try:
        status = int(data.split(b"\r\n", 1)[0].split()[1])
    except (IndexError, ValueError):
        return "other", repr(data[:60])
    if status >= 500:
        return "5xx", data.split(b"\r\n\r\n", 1)[-1][:100].decode(errors="replace")
    return (None, "") if status < 400 else ("other", f"HTTP {status}")


class LoadClient:
    """Runs on a `TrafficLoop` against (host, port) until `stop()`; `counts` is live."""

    def __init__(
        self,
        loop: TrafficLoop,
        address: tuple[str, int],
        *,
        rate: float = 100.0,
        concurrency: int = 20,
        timeout_s: float = 5.0,
    ) -> None:
        self.loop, self.address = loop, address
        self.rate, self.concurrency, self.timeout_s = rate, concurrency, timeout_s
        self.counts = TrafficCounts()
        self._task: concurrent.futures.Future[None] | None = None
        self._stopping = False

    def start(self) -> LoadClient:
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self.loop.loop)
        return self

    def stop(self) -> dict[str, Any]:
        """Stop sending, wait for what is in flight, return the counts."""
        self._stopping = True
        if self._task is not None:
            self._task.result(self.timeout_s + 5)
        return self.counts.report()

    async def _one(self, sem: asyncio.Semaphore) -> None:
        try:
            t0 = time.monotonic()
            kind, detail = await one_request(*self.address, self.timeout_s)
            self.counts.add(time.monotonic() - t0, kind, detail)
        finally:
            sem.release()

    async def _run(self) -> None:
        sem = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        period = 1.0 / self.rate
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stopping:
            await sem.acquire()  # bounded: a slow LB slows the client instead of piling up
            task = asyncio.create_task(self._one(sem))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
