"""Every Task of every state machine survives what Lambda does on a real account.

An idle VPC function goes Inactive; its next invoke fails with `Lambda.ResourceNotReadyException`
while Lambda re-creates its network interfaces (Lambda "function states" docs). A roller that runs
once a month meets exactly that, at a step it reaches mid-roll. Every Task must retry the not-ready
family long enough for the ENI to come back, and the transient service errors the Step Functions
best-practice page lists, and `States.Timeout` with a Task timeout longer than the Lambda's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eks_rolling.steps import LAMBDA_TIMEOUT_S

ASL_FILES = sorted((Path(__file__).resolve().parents[2] / "statemachine").glob("*.asl.json"))

# Lambda Invoke API errors (Lambda API reference, Invoke "Errors"), as Step Functions names them.
NOT_READY = {
    "Lambda.ResourceNotReadyException",  # 502: the function is Inactive, its VPC connection is coming back
    "Lambda.ENINotReadyException",  # 502: the ENI of its VPC connection is not ready yet
    "Lambda.EC2ThrottledException",  # 502: EC2 throttled Lambda while it set the function up
    "Lambda.EC2UnexpectedException",  # 502: EC2 error while setting up
    "Lambda.ResourceConflictException",  # 409: the function is Pending
}
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "States.Timeout",
}
# Inactive -> Pending -> Active re-creates the function's Hyperplane ENIs: minutes. 13 minutes of
# patience is the floor, guaranteed (no jitter may shorten it).
NOT_READY_PATIENCE_S = 13 * 60


def tasks(states: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield f"{where}{name}", state
        if state["Type"] == "Map":
            yield from tasks((state.get("ItemProcessor") or state["Iterator"])["States"], f"{where}{name}/")
        if state["Type"] == "Parallel":
            for i, branch in enumerate(state["Branches"]):
                yield from tasks(branch["States"], f"{where}{name}[{i}]/")


def all_tasks() -> list[tuple[str, dict[str, Any]]]:
    """Every Lambda Task (a `${...FunctionArn}` resource); the service integration that starts a
    wave (states:startExecution.sync:2) meets none of Lambda's failure modes."""
    return [
        (f"{path.name}:{name}", task)
        for path in ASL_FILES
        for name, task in tasks(json.loads(path.read_text())["States"])
        if task["Resource"].endswith("FunctionArn}")
    ]


def delays(rule: dict[str, Any]) -> list[float]:
    """The back-off before each retry, as Step Functions computes it without jitter."""
    interval, rate = rule.get("IntervalSeconds", 1), rule.get("BackoffRate", 2.0)
    cap = rule.get("MaxDelaySeconds")
    out = []
    for attempt in range(rule.get("MaxAttempts", 3)):
        d = interval * rate**attempt
        out.append(min(d, cap) if cap else d)
    return out


def rule_for(task: dict[str, Any], error: str) -> dict[str, Any] | None:
    """The first retrier that matches `error`: the one Step Functions applies."""
    for rule in task.get("Retry", []):
        if error in rule["ErrorEquals"] or "States.ALL" in rule["ErrorEquals"]:
            return rule
    return None


def test_there_are_tasks_to_check() -> None:
    assert ASL_FILES and len(all_tasks()) >= 16


@pytest.mark.parametrize("error", sorted(NOT_READY))
def test_every_task_waits_out_a_function_that_is_not_ready(error: str) -> None:
    for name, task in all_tasks():
        rule = rule_for(task, error)
        assert rule is not None, f"{name} does not retry {error}"
        assert rule.get("JitterStrategy", "NONE") == "NONE", f"{name}: jitter would shorten the patience"
        total = sum(delays(rule))
        assert total >= NOT_READY_PATIENCE_S, f"{name} gives up on {error} after {total:.0f}s"


@pytest.mark.parametrize("error", sorted(TRANSIENT))
def test_every_task_retries_transient_lambda_errors_and_its_own_timeout(error: str) -> None:
    for name, task in all_tasks():
        rule = rule_for(task, error)
        assert rule is not None, f"{name} does not retry {error}"
        assert rule.get("MaxAttempts", 3) >= 3, name


def test_task_timeout_outlasts_the_lambda_timeout() -> None:
    # With TimeoutSeconds == the Lambda timeout, a States.Timeout retry can start while the first
    # invocation is still running its side effects.
    for name, task in all_tasks():
        timeout = task.get("TimeoutSeconds")
        assert isinstance(timeout, int), f"{name} has no TimeoutSeconds"
        assert LAMBDA_TIMEOUT_S + 10 <= timeout <= LAMBDA_TIMEOUT_S + 120, (name, timeout)


def test_the_patience_is_what_the_asl_says() -> None:
    # The helper itself: 5 s doubling to a 120 s cap over 11 attempts is 875 s.
    rule = {"IntervalSeconds": 5, "BackoffRate": 2, "MaxDelaySeconds": 120, "MaxAttempts": 11}
    assert sum(delays(rule)) == 875
    (_, first), *_ = all_tasks()
    not_ready = rule_for(first, "Lambda.ResourceNotReadyException")
    assert not_ready is not None and sum(delays(not_ready)) == 875


# Waves together end their drains within seconds of each other: at 1,000 nodes, 1,000
# TerminateInstance calls (and their Auto Scaling reads) meet at once. Seven of 20 waves of a
# 1,000-node sandbox roll gave up on AwsThrottledError with 5 attempts (46 s of patience on
# average under full jitter); the API's backlog took minutes. 3 minutes on average is the floor.
THROTTLED_PATIENCE_S = 180


@pytest.mark.parametrize("error", ["AwsThrottledError", "KubeApiUnavailableError"])
def test_every_task_outwaits_a_burst_of_throttling(error: str) -> None:
    for name, task in all_tasks():
        rule = rule_for(task, error)
        assert rule is not None, f"{name} does not retry {error}"
        jitter = 0.5 if rule.get("JitterStrategy") == "FULL" else 1.0  # FULL: uniform in [0, delay]
        assert sum(delays(rule)) * jitter >= THROTTLED_PATIENCE_S, f"{name} gives up on {error} too soon"


def test_positive_control_five_attempts_were_not_patient_enough() -> None:
    old = {"IntervalSeconds": 3, "MaxAttempts": 5, "BackoffRate": 2, "MaxDelaySeconds": 60}
    assert sum(delays(old)) * 0.5 < THROTTLED_PATIENCE_S
