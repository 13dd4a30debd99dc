"""Timing profiles: the realistic one is real durations x ONE factor, seeded jitter, and a step
clock that runs as much faster as the Waits are shorter; the fast one is today's constants."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest

from eks_rolling_sandbox.controllers.base import Timings
from eks_rolling_sandbox.controllers.kubelet import prestop_seconds
from eks_rolling_sandbox.timing import FAST, MAX_TIME_FACTOR, REALISTIC, StepClock, profile
from tests.factories import k8s as b


def test_fast_profile_is_todays_timings_whatever_the_factor() -> None:
    assert asdict(FAST.timings(0.01)) == asdict(Timings())
    assert not FAST.scales_clock


def test_realistic_profile_scales_every_duration_by_the_one_factor() -> None:
    t = REALISTIC.timings(0.05)
    assert t.node_boot_s == pytest.approx(60 * 0.05)
    assert t.node_ready_s == pytest.approx(30 * 0.05)
    assert t.pod_start_s == pytest.approx(8 * 0.05)
    assert t.endpoint_lag_s == pytest.approx(1 * 0.05)
    assert t.spec_scale == 0.05  # the pod spec's grace, preStop and probe seconds too
    assert t.spec_seconds(30) == pytest.approx(1.5)


def test_node_boot_to_ready_spans_60_to_120_real_seconds_with_seeded_jitter() -> None:
    t = REALISTIC.timings(1.0)
    totals = [
        t.jittered(t.node_boot_s, f"i-{n}:boot") + t.jittered(t.node_ready_s, f"i-{n}:ready")
        for n in range(200)
    ]
    assert 60 <= min(totals) < 75 and 105 < max(totals) <= 120
    again = REALISTIC.timings(1.0)
    assert totals[:5] == [
        again.jittered(t.node_boot_s, f"i-{n}:boot") + again.jittered(t.node_ready_s, f"i-{n}:ready")
        for n in range(5)
    ]
    other_seed = REALISTIC.timings(1.0, seed=11)
    assert other_seed.jittered(60, "i-0:boot") != t.jittered(60, "i-0:boot")


def test_bad_factor_and_unknown_profile_are_refused() -> None:
    with pytest.raises(ValueError, match="time factor"):
        REALISTIC.timings(0)
    with pytest.raises(ValueError, match=r"time factor must be in \(0, 4\], got 4.5"):
        REALISTIC.timings(MAX_TIME_FACTOR + 0.5)  # a benchmark's wall clock: F x its profile seconds
    with pytest.raises(ValueError, match="unknown timing profile 'slow'"):
        profile("slow")


def test_a_factor_above_one_runs_the_sandbox_slower_than_real_time() -> None:
    t = REALISTIC.timings(2.0)
    assert t.node_boot_s == pytest.approx(120) and t.spec_seconds(30) == pytest.approx(60)
    clock = StepClock(2.0)
    t0, w0 = clock(), time.monotonic()
    time.sleep(0.2)
    assert (clock() - t0).total_seconds() == pytest.approx((time.monotonic() - w0) / 2, rel=0.1)


def test_step_clock_runs_one_over_factor_faster_than_the_wall() -> None:
    clock = StepClock(0.05)
    t0, w0 = clock(), time.monotonic()
    time.sleep(0.2)
    elapsed, wall = (clock() - t0).total_seconds(), time.monotonic() - w0
    assert elapsed == pytest.approx(wall / 0.05, rel=0.1)


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        ({"sleep": {"seconds": 15}}, 15.0),
        ({"exec": {"command": ["sh", "-c", "sleep 20"]}}, 20.0),
        ({"exec": {"command": ["/bin/sleep", "7"]}}, 7.0),
        ({"exec": {"command": ["nginx", "-s", "quit"]}}, 0.0),  # unknown length: counted as 0
        ({"httpGet": {"path": "/drain", "port": 80}}, 0.0),
    ],
)
def test_prestop_seconds_reads_the_sleep_of_the_hook(hook: dict[str, object], seconds: float) -> None:
    pod = b.pod("p", containers=[{"name": "app", "image": "x", "lifecycle": {"preStop": hook}}])
    assert prestop_seconds(pod) == seconds
