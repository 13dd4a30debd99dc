"""The runner's ONE time factor reaches the step handlers' clock: in the realistic profile a
deadline of N seconds computed from Deps.now passes after N x factor wall seconds, in step with
the scaled Waits; in the fast profile the steps keep the real clock (as before)."""

from __future__ import annotations

import time

import pytest

from eks_rolling.services import deps
from eks_rolling.services.deps import Deps
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.runner import LocalRunner, RunnerStats, scaled_time
from eks_rolling_sandbox.timing import StepClock


def _elapsed(clock: Deps, wall_s: float) -> float:
    t0 = clock.now()
    time.sleep(wall_s)
    return (clock.now() - t0).total_seconds()


def test_steps_read_a_clock_scaled_by_the_runners_factor() -> None:
    with scaled_time(0.05, RunnerStats(), step_clock=True):
        assert isinstance(deps.step_clock, StepClock)
        assert _elapsed(Deps.from_env(), 0.2) == pytest.approx(0.2 / 0.05, rel=0.25)
    assert deps.step_clock is deps.utcnow  # restored on exit
    assert _elapsed(Deps.from_env(), 0.1) == pytest.approx(0.1, abs=0.05)


def test_fast_profile_keeps_the_real_clock() -> None:
    with scaled_time(0.05, RunnerStats()):
        assert deps.step_clock is deps.utcnow


def test_a_second_factor_for_the_runner_is_refused_in_the_realistic_profile() -> None:
    env = SandboxEnv(timing_profile="realistic", time_factor=0.05, authenticate=False)
    with pytest.raises(ValueError, match="one factor scales both"):
        LocalRunner(env, time_scale=0.1)
    assert LocalRunner(env).time_scale == 0.05
