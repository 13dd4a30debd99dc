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


def test_task_timeouts_stretch_with_a_factor_above_one_and_stay_wall_seconds_below() -> None:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    task, unset = TimeoutSeconds(330), TimeoutSeconds(TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)
    with scaled_time(3.0, RunnerStats(), step_clock=True):
        # A handler's 60 s in-call wait is 180 wall seconds here: its Task's 330 s must be 990
        assert task._eval_seconds(None) == 990
        assert unset._eval_seconds(None) == TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    with scaled_time(0.05, RunnerStats(), step_clock=True):
        assert task._eval_seconds(None) == 330
    assert task._eval_seconds(None) == 330  # moto's own again on exit


def test_fast_profile_keeps_the_real_clock() -> None:
    with scaled_time(0.05, RunnerStats()):
        assert deps.step_clock is deps.utcnow


def test_a_second_factor_for_the_runner_is_refused_in_the_realistic_profile() -> None:
    env = SandboxEnv(timing_profile="realistic", time_factor=0.05, authenticate=False)
    with pytest.raises(ValueError, match="one factor scales both"):
        LocalRunner(env, time_scale=0.1)
    assert LocalRunner(env).time_scale == 0.05


def test_a_scenario_set_up_fast_forwarded_boots_nodes_at_the_small_factor_then_the_profile_returns() -> None:
    with SandboxEnv(timing_profile="realistic", time_factor=2.0, authenticate=False) as env:
        slow = env.sandbox.timings.node_boot_s
        assert slow == 120.0  # the profile's 60 s at factor 2
        # Every holder reads the one shared Timings (a copy would keep the slow boot)
        holders = [env.cloud, env.sandbox.manager, *env.sandbox.manager.controllers]
        assert all(h.timings is env.sandbox.timings for h in holders)
        with env.fast_forward():
            assert env.sandbox.timings.node_boot_s == pytest.approx(60 * 0.05)
            assert env.sandbox.timings.jitter == 0.33  # the same profile, only faster
        assert env.sandbox.timings.node_boot_s == slow
