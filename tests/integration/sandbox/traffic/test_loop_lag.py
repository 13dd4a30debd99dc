"""The traffic loop's lag monitor reports a stall that happened (the loop blocked for 300 ms),
with its wall-clock time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from eks_rolling_sandbox.traffic.http_pods import TrafficLoop
from eks_rolling_sandbox.traffic.loop_lag import LoopLag


@pytest.fixture
def loop() -> Iterator[TrafficLoop]:
    loop = TrafficLoop()
    yield loop
    loop.close()


def test_a_blocked_loop_is_reported_as_a_stall_with_its_time(loop: TrafficLoop) -> None:
    lag = LoopLag(loop).start()
    time.sleep(0.1)
    loop.loop.call_soon_threadsafe(time.sleep, 0.3)  # blocks the loop's thread
    time.sleep(0.5)
    report = lag.stop()
    assert report["max_ms"] >= 250, report
    assert report["stalls_over_100ms"] >= 1, report
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} \d+ ms", report["stall_samples"][0]), report
