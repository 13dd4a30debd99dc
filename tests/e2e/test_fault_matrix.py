"""Rows of the fault matrix (`make faults`, tests/factories/fault_matrix.py) that no other test
covers: each injects its fault into a real roll through the state machine, then checks the roll
finished (or stopped with a named error), nothing is left paused, no PDB was violated by the
tool, no lock is held."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from eks_rolling.aws.lock import EXPIRES_ATTR, KEY_ATTR
from eks_rolling_sandbox.runner import LocalRunner
from tests.e2e.conftest import Field, leftovers, record_run, states_entered
from tests.factories.fault_matrix import FaultRow

pytestmark = pytest.mark.slow


def _roll_under_fault(
    field: Field,
    row: FaultRow,
    injected: str,
    inject: Callable[[LocalRunner], None],
    during: Callable[[LocalRunner, str], None] | None = None,
    foreign_pods: set[str] | frozenset[str] = frozenset(),
    **settings: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A launch template roll with `inject` applied before it starts and `during` run beside it;
    asserts it SUCCEEDED, replaced every old instance and left nothing paused or violated.
    `foreign_pods` (filled by `during`) were killed by someone else: a PDB does not cover that."""
    before, ca_before = field.state(), field.autoscaler_replicas()
    old_ids = {i.instance_id for i in before.instances}
    monitor = field.monitor()
    event = field.scenario.bump_launch_template()
    with field.runner(**settings) as runner:
        inject(runner)
        arn = runner.start(event)
        if during is not None:
            during(runner, arn)
        result = runner.wait(arn, timeout=300)
        history = runner.history(arn)
    monitor.stop()
    record_run(row, result, history, injected)
    left = leftovers(field, before, ca_before)
    violations = [v for a in monitor.tracked.values() for v in a.violations]
    ours = [v for v in violations if v["pod"] not in foreign_pods]
    row.restored, row.pdb_violations = not left, len(ours)
    if foreign_pods:
        row.numbers["involuntary_violations"] = len(violations) - len(ours)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert not old_ids & {i.instance_id for i in field.state().instances}
    assert not left
    assert not ours, monitor.report()
    return result, history


def _wait_for_state(runner: LocalRunner, arn: str, state: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while state not in [n for n, _ in states_entered(runner.history(arn))]:
        assert time.monotonic() < deadline, f"the run never reached {state}"
        assert runner.describe(arn)["status"] == "RUNNING"
        time.sleep(0.2)


# Steps whose side effect a lost reply would repeat on retry: each must be idempotent.
SIDE_EFFECT_STEPS = (
    "acquire_lock",
    "pause_autoscaler",
    "suspend_processes",
    "taint_old_nodes",
    "surge_capacity",
    "drain_node",
    "exclude_from_load_balancers",
    "terminate_instance",
    "restore_cluster",
    "release_lock",
)


@pytest.mark.fault("F3")
def test_f3_a_lambda_killed_after_its_side_effect_is_retried_and_the_roll_finishes(
    field: Field, fault_row: FaultRow
) -> None:
    # Given every step with a side effect losing its first reply after the handler did its work
    before = field.state()

    def inject(runner: LocalRunner) -> None:
        runner.lambda_faults.crash_after_handler(*SIDE_EFFECT_STEPS)

    # When a roll runs
    _result, _history = _roll_under_fault(
        field, fault_row, "each side-effect step dies once after its work", inject
    )
    # Then every crash reached the state machine as a Lambda service error and was retried ...
    assert fault_row.numbers["failed_attempts"] == {"Lambda.ServiceException": len(SIDE_EFFECT_STEPS)}
    # ... and no side effect was doubled: capacity is back where it was, nothing surged twice
    after = field.state()
    assert (after.desired, after.max_size) == (before.desired, before.max_size)
    fault_row.numbers["lost_replies"] = len(SIDE_EFFECT_STEPS)


@pytest.mark.fault("F4")
def test_f4_kubernetes_5xx_and_timeouts_and_aws_throttling_are_waited_out(
    field: Field, fault_row: FaultRow
) -> None:
    # Given the Kubernetes API answering 503 to node and eviction calls for a while, stalling
    # pod reads past the client's timeout, and AWS throttling the ASG reads beyond botocore's
    # own retries
    sb = field.env.sandbox
    faults: list[Any] = []

    def inject(runner: LocalRunner) -> None:
        faults.append(sb.faults.add(path=r"^/api/v1/nodes", status=503, times=4, after=3))
        faults.append(sb.faults.add(method="POST", path=r"/eviction$", status=500, times=3))
        faults.append(sb.faults.add(method="GET", path=r"^/api/v1/pods$", delay_s=3.0, times=2, after=1))
        faults.append(field.env.moto.faults.add("DescribeAutoScalingGroups", "Throttling", times=6, after=4))

    # When a roll runs (a 2 s client timeout so the stalled reads time out)
    _roll_under_fault(
        field, fault_row, "k8s 503/500 x7, 2 stalled reads, ASG Throttling x6", inject, api_timeout_s="2"
    )
    # Then every fault fired and the roll still finished
    fired = [f.fired for f in faults]
    assert fired == [4, 3, 2, 6], fired
    assert fault_row.numbers["failed_attempts"], "no fault reached the state machine"
    fault_row.numbers["faults_fired"] = sum(fired)


@pytest.mark.fault("F5")
def test_f5_scaling_activity_in_progress_and_an_az_out_of_capacity_during_surge(
    field: Field, fault_row: FaultRow
) -> None:
    # Given the ASG busy with a scaling activity (its first capacity change and termination
    # refused) and the first AZ out of capacity for the first batch's surge
    moto = field.env.moto
    faults: list[Any] = []
    az = field.scenario.azs[0]

    def inject(runner: LocalRunner) -> None:
        faults.append(moto.faults.add("UpdateAutoScalingGroup", "ScalingActivityInProgress", times=1))
        faults.append(moto.faults.add("TerminateInstanceInAutoScalingGroup", "ScalingActivityInProgress"))
        moto.faults.unavailable_azs.add(az)

    def capacity_returns(runner: LocalRunner, arn: str) -> None:
        _wait_for_state(runner, arn, "DrainNode")
        moto.faults.unavailable_azs.discard(az)

    _result, _history = _roll_under_fault(
        field, fault_row, f"ScalingActivityInProgress x2, {az} out of capacity", inject, capacity_returns
    )
    assert [f.fired for f in faults] == [1, 1]
    assert fault_row.numbers["failed_attempts"].get("AwsThrottledError") == 2
    # ... and the roll ends with nodes in every AZ again
    assert {i.az for i in field.state().instances} == set(field.scenario.azs)


@pytest.mark.fault("F12", matrix_only=True)  # slower: make faults only
def test_f12_an_old_instance_terminated_by_someone_else_mid_roll(field: Field, fault_row: FaultRow) -> None:
    # Given an old instance that is not in the first batch
    victim: list[str] = []
    victim_pods: set[str] = set()

    def terminate_one(runner: LocalRunner, arn: str) -> None:
        _wait_for_state(runner, arn, "DrainNode")
        entered = states_entered(runner.history(arn))
        draining = {(inp.get("node") or {}).get("instance_id") for n, inp in entered if n == "DrainNode"}
        state = field.state()
        candidates = sorted(
            i.instance_id
            for i in state.instances
            if field.asg.is_outdated(i, state) and i.instance_id not in draining
        )
        victim.append(candidates[-1])
        node = field.env.cloud.node_for(victim[0])
        victim_pods.update(
            p["metadata"]["name"]
            for p in field.env.sandbox.store.all("pods")
            if p["spec"].get("nodeName") == node
        )
        field.env.aws("ec2").terminate_instances(InstanceIds=victim)

    # When someone terminates it by hand mid-roll
    _roll_under_fault(
        field,
        fault_row,
        "an old instance terminated via EC2 mid-roll",
        lambda r: None,
        terminate_one,
        foreign_pods=victim_pods,
    )
    # Then the roll finished; only the killed node's own pods ever took a PDB below its minimum
    assert victim_pods
    fault_row.numbers["terminated_by_someone_else"] = victim[0]


@pytest.mark.fault("F14", matrix_only=True)  # slower: make faults only
def test_f14_a_run_killed_past_its_deadline_has_its_expired_lock_taken_over(
    field: Field, fault_row: FaultRow
) -> None:
    # Given a roll killed mid-drain whose lock then expired (its TTL passed)
    before, ca_before = field.state(), field.autoscaler_replicas()
    ddb = field.env.aws("dynamodb")
    with field.runner() as runner:
        dead = runner.start(field.scenario.bump_launch_template())
        _wait_for_state(runner, dead, "DrainNode")
        field.env.aws("stepfunctions").stop_execution(
            executionArn=dead, error="Killed", cause="past deadline"
        )
        runner.wait(dead, timeout=30)
        time.sleep(1.0)  # an invocation in flight when the kill came finishes on its own
        assert leftovers(field, before, ca_before), "the killed run left nothing to restore"
        item = ddb.scan(TableName=field.env.lock_table)["Items"][0]
        ddb.update_item(
            TableName=field.env.lock_table,
            Key={KEY_ATTR: item[KEY_ATTR]},
            UpdateExpression=f"SET {EXPIRES_ATTR} = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
        )

        # When a new trigger comes
        result = runner.run({"asgName": field.scenario.asg_name}, timeout=300)
        history = runner.history(result["executionArn"])
    record_run(fault_row, result, history, "run killed mid-drain, its lock expired")
    left = leftovers(field, before, ca_before)
    fault_row.restored = not left
    # Then it took the expired lock, restored what the dead run left and rolled the group
    assert result["status"] == "SUCCEEDED", result.get("cause")
    lock = next(inp for name, inp in states_entered(history) if name == "PlanRoll")["lock"]
    assert lock["took_over_from"] == dead
    assert lock["restored"]["autoscaler_replicas"] == ca_before
    assert not left
    state = field.state()
    assert not [i for i in state.instances if field.asg.is_outdated(i, state)]


@pytest.mark.fault("F15", matrix_only=True)  # slower: make faults only
def test_f15_the_autoscaler_deployment_edited_during_the_roll(field: Field, fault_row: FaultRow) -> None:
    # Given someone upgrading cluster-autoscaler mid-roll (new image, replicas back to 1)
    sb = field.env.sandbox
    ns, name = field.scenario.autoscaler
    image = "registry.k8s.io/autoscaling/cluster-autoscaler:v9.9.9"
    ca_before = field.autoscaler_replicas()

    def helm_upgrade(runner: LocalRunner, arn: str) -> None:
        _wait_for_state(runner, arn, "DrainNode")

        def edit(cur: dict[str, Any]) -> dict[str, Any]:
            cur["spec"]["template"]["spec"]["containers"][0]["image"] = image
            cur["spec"]["replicas"] = 1
            return cur

        sb.store.mutate("deployments", ns, name, edit)

    # When the roll runs
    _roll_under_fault(
        field, fault_row, "CA image and replicas edited mid-drain", lambda r: None, helm_upgrade
    )
    # Then the roll finished, the edit's image stays and replicas are back at the original
    d = sb.store.get("deployments", ns, name)
    assert d is not None
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert field.autoscaler_replicas() == ca_before
    fault_row.numbers["autoscaler_replicas"] = ca_before
