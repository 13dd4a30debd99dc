"""Whether a lock's holder is alive, asked of Step Functions (moto's interpreter runs the
executions), and what AcquireLock does with a holder it cannot see."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.stub import Stubber

from eks_rolling.aws.clients import aws_client
from eks_rolling.aws.executions import Executions
from eks_rolling.aws.lock import AsgLock, create_lock_table
from eks_rolling.errors import LockHolderUnknownError, RollInProgressError
from eks_rolling.models import AcquireLockInput, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.resolve import acquire_lock
from eks_rolling.settings import Settings

TABLE = "eks-rolling-locks"
ROLE = "arn:aws:iam::123456789012:role/sfn"
WAITING = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}}}


@pytest.fixture
def sfn(settings: Settings) -> Any:
    return aws_client("stepfunctions", settings)


def _running_execution(sfn: Any) -> str:
    machine = sfn.create_state_machine(name="hold", definition=json.dumps(WAITING), roleArn=ROLE)
    arn: str = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    return arn


def test_a_running_execution_is_alive_and_a_stopped_one_is_not(sfn: Any) -> None:
    arn = _running_execution(sfn)
    executions = Executions(sfn)
    assert executions.is_alive(arn)
    sfn.stop_execution(executionArn=arn)
    deadline = time.monotonic() + 10
    while executions.status(arn) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executions.status(arn) == "ABORTED"
    assert not executions.is_alive(arn)


@pytest.mark.parametrize(("status", "alive"), [("PENDING_REDRIVE", True), ("TIMED_OUT", False)])
def test_statuses_moto_cannot_produce(sfn: Any, status: str, alive: bool) -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:eks-rolling:run-1"
    with Stubber(sfn) as stub:
        stub.add_response(
            "describe_execution",
            {
                "executionArn": arn,
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:eks-rolling",
                "status": status,
                "startDate": "2026-12-06T00:00:00Z",
            },
            {"executionArn": arn},
        )
        assert Executions(sfn).is_alive(arn) is alive


@pytest.mark.parametrize(
    "holder",
    ["not-an-arn", "arn:aws:states:us-east-1:123456789012:execution:eks-rolling:gone"],
    ids=["not-an-arn", "no-such-execution"],
)
def test_a_holder_that_cannot_be_described_keeps_its_lock(settings: Settings, holder: str) -> None:
    # Given a lock held by an execution Step Functions cannot describe
    deps = Deps(settings)
    create_lock_table(aws_client("dynamodb", settings), TABLE)
    deps.lock.acquire("workers", holder, ttl_s=3600, now=time.time())
    ctx = RollContext(
        execution_id="arn:aws:states:us-east-1:123456789012:execution:eks-rolling:run-2",
        asg_name="workers",
        cluster_name="prod",
        taint_value="run-2",
    )
    # When a new run asks for it, Then it fails with the named error and the lock stays put
    with pytest.raises(LockHolderUnknownError, match="cannot tell whether lock holder"):
        acquire_lock(AcquireLockInput(ctx=ctx), deps)
    assert deps.lock.holder("workers") == holder


def test_a_live_holder_keeps_its_lock(settings: Settings, sfn: Any) -> None:
    deps = Deps(settings)
    create_lock_table(aws_client("dynamodb", settings), TABLE)
    holder = _running_execution(sfn)
    deps.lock.acquire("workers", holder, ttl_s=3600, now=time.time())
    ctx = RollContext(execution_id="run-3", asg_name="workers", cluster_name="prod", taint_value="run-3")
    with pytest.raises(RollInProgressError) as caught:
        acquire_lock(AcquireLockInput(ctx=ctx), deps)
    assert caught.value.holder == holder
    assert deps.lock.holder("workers") == holder


def test_take_over_only_replaces_the_holder_it_names(settings: Settings) -> None:
    ddb = aws_client("dynamodb", settings)
    create_lock_table(ddb, TABLE)
    lock = AsgLock(ddb, TABLE)
    lock.acquire("workers", "dead", ttl_s=3600, now=1000.0)
    assert lock.take_over("workers", holder="dead", owner="second", ttl_s=3600, now=1001.0)
    # A third run that also saw "dead" loses the race: "second" keeps the lock
    assert not lock.take_over("workers", holder="dead", owner="third", ttl_s=3600, now=1002.0)
    assert lock.holder("workers") == "second"


def test_acquire_reports_whom_the_lock_was_taken_from(settings: Settings) -> None:
    ddb = aws_client("dynamodb", settings)
    create_lock_table(ddb, TABLE)
    lock = AsgLock(ddb, TABLE)
    # A free lock: nobody
    assert lock.acquire("workers", "first", ttl_s=60, now=1000.0) is None
    assert lock.acquire("workers", "first", ttl_s=60, now=1010.0) is None  # a retry
    # An expired lock: its holder, whose leftovers the new owner restores
    assert lock.acquire("workers", "second", ttl_s=60, now=2000.0) == "first"
    # A retried AcquireLock after a takeover still learns the dead holder (restoring may have failed)
    assert lock.take_over("workers", holder="second", owner="third", ttl_s=60, now=2001.0)
    assert lock.acquire("workers", "third", ttl_s=60, now=2002.0) == "second"
    assert lock.acquire("workers", "third", ttl_s=60, now=2003.0) == "second"
