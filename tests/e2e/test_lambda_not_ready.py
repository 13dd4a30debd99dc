"""A roller idle for weeks: its VPC functions are Inactive, and each one's first invokes fail with
`Lambda.ResourceNotReadyException` (502) while Lambda re-creates the network interfaces. The roll
must wait them out through the ASL's Retry and still replace every old node."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from eks_rolling.steps import STEPS
from eks_rolling_sandbox.runner import LocalRunner
from tests.e2e.conftest import FAST, Field, leftovers, record_run
from tests.factories.fault_matrix import FaultRow

pytestmark = pytest.mark.slow


@pytest.mark.fault("F13")
def test_every_function_refusing_its_first_invokes_still_rolls_every_node(
    field: Field, fault_row: FaultRow
) -> None:
    # Given every step's function Inactive: its first invoke refused, ResolveTarget's first three
    before, ca_before = field.state(), field.autoscaler_replicas()
    old_ids = {i.instance_id for i in before.instances}
    monitor = field.monitor()
    with field.runner() as runner:
        runner.lambda_faults.refuse()
        runner.lambda_faults.refuse("resolve_target", times=2)

        # When a launch template change triggers a roll
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
        injected = list(runner.lambda_faults.injected)
    monitor.stop()
    record_run(fault_row, result, history, "every function Inactive: ResourceNotReadyException first")
    fault_row.restored = not leftovers(field, before, ca_before)
    fault_row.pdb_violations = monitor.violations
    assert monitor.violations == 0, monitor.report()

    # Then every injected refusal reached the state machine as Lambda.ResourceNotReadyException ...
    failed = [
        e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"
    ]
    invoked = {
        step.id
        for step in STEPS
        for e in history
        if e["type"] == "LambdaFunctionScheduled"
        and f"-{step.id.replace('_', '-')}-" in e["lambdaFunctionScheduledEventDetails"]["resource"]
    }
    assert len(invoked) >= 13  # every step of a successful roll (not Rollback)
    assert Counter(i.step for i in injected) == {s: 3 if s == "resolve_target" else 1 for s in invoked}
    assert failed == ["Lambda.ResourceNotReadyException"] * len(injected)
    # ... was retried, not caught: the roll succeeded and replaced every old instance
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after = field.state()
    assert not old_ids & {i.instance_id for i in after.instances}
    assert field.autoscaler_replicas() > 0
    # ... and each replaced node reports a count of evicted pods, not the list (state size)
    replaced = [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in history
        if e["type"] == "PassStateExited" and e["stateExitedEventDetails"]["name"] == "NodeReplaced"
    ]
    assert len(replaced) == len(old_ids)
    assert all(isinstance(r["evicted_pods"], int) and "evicted" not in r for r in replaced)
    assert sum(r["evicted_pods"] for r in replaced) > 0


def test_a_function_that_never_comes_back_fails_the_step_with_the_lambda_error(field: Field) -> None:
    # Given ResolveTarget's function refusing more invokes than the Retry allows (12 attempts)
    # (Waits scaled 10x further than usual: the 11 back-offs add up to 875 s)
    with LocalRunner(field.env, time_scale=0.005, settings=FAST) as runner:
        runner.lambda_faults.refuse("resolve_target", times=12)

        # When a roll is triggered
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])

    # Then it ends as a failed trigger naming the Lambda error, after exactly 12 attempts
    attempts = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert len(attempts) == 12
    assert result["status"] == "FAILED"
    assert result["error"] == "Lambda.ResourceNotReadyException"


def test_an_invoke_that_loses_its_connection_is_retried_as_lambda_sdk_client_exception(field: Field) -> None:
    # Given the first two invokes of WaitNewNodes and of DrainNode failing on the way, one losing
    # its connection before an answer and one never connecting (two 1,000-node benches failed on
    # these: each error was a bare `Exception` no Retry names)
    before, ca_before = field.state(), field.autoscaler_replicas()
    with field.runner() as runner:
        runner.lambda_faults.hang_up("wait_new_nodes", "drain_node", times=2)

        # When a roll is triggered
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
        injected = list(runner.lambda_faults.injected)

    # Then each reached the state machine as Lambda.SdkClientException, as a failed call on the
    # way to Lambda does on AWS, and the ASL's Retry took it: the roll succeeded, all restored
    failed = [
        e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"
    ]
    assert Counter(i.step for i in injected) == {"wait_new_nodes": 2, "drain_node": 2}
    assert Counter(i.code for i in injected) == {"ConnectionClosed": 2, "ConnectTimeout": 2}
    assert failed == ["Lambda.SdkClientException"] * 4
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert leftovers(field, before, ca_before) == []
