"""How late the traffic loop runs: a heartbeat every `period_s` measures its own oversleep.

The loop serves the client, the load balancer and every pod server. Time is compressed (a 5 s
preStop runs as 0.25 s), so a stall of a few hundred ms on a loaded machine stands for seconds
of real time that no real node would lose: a request routed before a pod left the endpoints can
then reach it after SIGTERM. Stalls are reported with wall-clock stamps to be matched with
failed requests and the execution history.

No upstream counterpart: a measure of the sandbox itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .http_pods import TrafficLoop, wall_stamp

STALL_MS = 100.0  # reported one by one above this
MAX_STALLS_KEPT = 20


class LoopLag:
    def __init__(self, loop: TrafficLoop, *, period_s: float = 0.01) -> None:
        self.loop, self.period_s = loop, period_s
        self.max_ms = 0.0
        self.stalls = 0
        self.samples: list[str] = []
        self._running = False

    def start(self) -> LoopLag:
        self._running = True
        self.loop.spawn(self._beat())
        return self

    def stop(self) -> dict[str, Any]:
        self._running = False
        return self.report()

    async def _beat(self) -> None:
        while self._running:
            t0 = time.monotonic()
            await asyncio.sleep(self.period_s)
            late_ms = 1000 * (time.monotonic() - t0 - self.period_s)
            self.max_ms = max(self.max_ms, late_ms)
            if late_ms >= STALL_MS:
                self.stalls += 1
                if len(self.samples) < MAX_STALLS_KEPT:
                    at = wall_stamp()
                    self.samples.append(f"{at} {late_ms:.0f} ms")

    def report(self) -> dict[str, Any]:
        return {
            "max_ms": round(self.max_ms, 1),
            f"stalls_over_{STALL_MS:.0f}ms": self.stalls,
            "stall_samples": list(self.samples),
        }
