"""The hook steps' logic with a scripted caller and a fake clock (no network): retries within
the policy, HookFailedError naming the hook, the node and the last answer, and which hooks an
ASG gets from its tags and the settings."""

from __future__ import annotations

import pytest

from eks_rolling.errors import HookFailedError, SettingsError
from eks_rolling.labels import TAG_PRE_DRAIN_HOOKS
from eks_rolling.models import NodeTarget, PreDrainHooksInput, RollContext
from eks_rolling.planning.hooks import Answer
from eks_rolling.services.deps import Deps
from eks_rolling.services.hooks import hooks_for, run_hooks
from eks_rolling.settings import Settings

ARN = "arn:aws:lambda:us-east-1:123456789012:function:check"
URL = "https://hooks.example.com/retiring"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def deps(clock: Clock, **settings: object) -> Deps:
    return Deps(Settings(**settings), monotonic=clock.monotonic, sleep=clock.sleep)  # type: ignore[arg-type]


def step_input(*targets: str) -> PreDrainHooksInput:
    return PreDrainHooksInput(
        ctx=RollContext(execution_id="run-1", asg_name="ng", cluster_name="c", taint_value="run-1"),
        node=NodeTarget(instance_id="i-0abc", node_name="ip-10-0-1-1", az="us-east-1a"),
        hooks=list(targets),
    )


def scripted(*answers: Answer, cost_s: float = 0.0, clock: Clock | None = None):  # type: ignore[no-untyped-def]
    calls: list[tuple[str, bytes, float]] = []
    queue = list(answers)

    def call(target: str, body: bytes, timeout_s: float) -> Answer:
        calls.append((target, body, timeout_s))
        if clock is not None:
            clock.t += min(cost_s, timeout_s)  # a real caller gives up at its timeout
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return call, calls


def test_a_flaky_hook_is_retried_and_then_passes() -> None:
    clock = Clock()
    call, calls = scripted(Answer(False, "HTTP 503", retry=True), Answer(True, "HTTP 200"))
    (done,) = run_hooks("pre_drain", step_input(URL), deps(clock, hook_backoff_s=2), call)
    assert done.ok and done.attempts == 2 and clock.slept == [2.0]
    assert b'"instance_id": "i-0abc"' in calls[0][1]


def test_a_hook_failing_every_attempt_stops_the_roll_naming_hook_node_and_answer() -> None:
    clock = Clock()
    call, calls = scripted(Answer(False, "FunctionError Unhandled: db down", retry=True))
    with pytest.raises(HookFailedError) as err:
        run_hooks("pre_drain", step_input(ARN, URL), deps(clock, hook_attempts=3, hook_backoff_s=1), call)
    assert len(calls) == 3 and clock.slept == [1.0, 2.0]
    assert all(c[0] == ARN for c in calls)  # the next hook never runs after a failed one
    message = str(err.value)
    assert ARN in message and "ip-10-0-1-1" in message and "i-0abc" in message and "db down" in message


def test_a_final_no_is_not_retried() -> None:
    call, calls = scripted(Answer(False, "answered ok=false: busy"))
    with pytest.raises(HookFailedError, match="after 1 attempt"):
        run_hooks("pre_drain", step_input(ARN), deps(Clock()), call)
    assert len(calls) == 1


def test_the_deadline_bounds_a_slow_failing_hook() -> None:
    clock = Clock()
    call, calls = scripted(Answer(False, "no answer", retry=True), cost_s=30, clock=clock)
    with pytest.raises(HookFailedError):
        run_hooks(
            "pre_drain",
            step_input(URL),
            deps(clock, hook_attempts=10, hook_timeout_s=30, hook_deadline_s=110, hook_backoff_s=2),
            call,
        )
    # calls at 0, 32 and 66 s (2 and 4 s pauses); the fourth starts at 104 s with the 6 s left
    assert [c[2] for c in calls] == [30, 30, 30, 6]
    assert clock.t == 110


def test_all_hooks_of_a_step_fit_its_lambda_timeout() -> None:
    # Given three hooks that each answer after 30 s, passing only on their fourth call
    from eks_rolling.services.hooks import STEP_BUDGET_S
    from eks_rolling.steps import LAMBDA_TIMEOUT_S

    clock = Clock()
    seen: dict[str, int] = {}

    def call(target: str, body: bytes, timeout_s: float) -> Answer:
        seen[target] = seen.get(target, 0) + 1
        clock.t += min(30, timeout_s)
        if timeout_s < 30:
            return Answer(False, "no answer", retry=True)
        return Answer(seen[target] >= 4, f"call {seen[target]}", retry=True)

    settings = {"hook_attempts": 4, "hook_timeout_s": 30, "hook_deadline_s": 240, "hook_backoff_s": 1}
    # When the first two pass after 127 s each, the third gets only what is left of the step
    with pytest.raises(HookFailedError) as err:
        run_hooks("pre_drain", step_input(URL, ARN, f"{ARN}:live"), deps(clock, **settings), call)
    # Then the step ends within its Lambda's time, naming the hook that ran out of it
    assert seen[URL] == seen[ARN] == 4 and f"{ARN}:live" in str(err.value)
    assert clock.t <= STEP_BUDGET_S < LAMBDA_TIMEOUT_S


def test_the_tag_wins_over_the_setting_and_says_so() -> None:
    s = Settings(pre_drain_hooks=URL, post_replace_hooks=ARN)
    hooks = hooks_for(s, {TAG_PRE_DRAIN_HOOKS: ARN})
    assert hooks.pre_drain == [ARN] and hooks.pre_drain_from == f"tag {TAG_PRE_DRAIN_HOOKS}"
    assert hooks.post_replace == [ARN] and hooks.post_replace_from == "setting post_replace_hooks"
    assert hooks_for(Settings(), {}).pre_drain == []


def test_a_bad_tag_is_a_settings_error_naming_the_tag() -> None:
    with pytest.raises(SettingsError, match=TAG_PRE_DRAIN_HOOKS):
        hooks_for(Settings(), {TAG_PRE_DRAIN_HOOKS: "http://plain.example.com"})


def test_a_bad_setting_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from eks_rolling.settings import load_settings

    monkeypatch.setenv("EKS_ROLLING_PRE_DRAIN_HOOKS", "lambda-name-only")
    with pytest.raises(SettingsError, match="EKS_ROLLING_PRE_DRAIN_HOOKS"):
        load_settings()
