"""The runtime history guard stops a polling loop at its wave's cap, with a named error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eks_rolling.errors import HistoryBudgetExceededError, PermanentError
from eks_rolling.guard import check_rounds, round_cap
from eks_rolling.models import (
    DrainNodeInput,
    DrainNodeOutput,
    MoveRedisPodsInput,
    MoveRedisPodsOutput,
    NodeTarget,
    RollContext,
    StepError,
    WaitNewNodesInput,
    WaitNewNodesOutput,
)
from eks_rolling.planning import budget

NOW = datetime(2026, 12, 7, tzinfo=UTC)
CTX = RollContext(execution_id="arn:x", asg_name="ng", cluster_name="c", taint_value="t")
NODE = NodeTarget(instance_id="i-1", node_name="n1", az="a", redis_rounds=100)


def _drain(attempt: int, scale: int | None) -> DrainNodeInput:
    prev = DrainNodeOutput(
        started_at=NOW, deadline=NOW + timedelta(hours=1), attempt=attempt, detail=["shop/api-1"]
    )
    return DrainNodeInput(ctx=CTX, node=NODE, drain=prev, round_scale=scale)


def test_a_loop_stops_at_its_cap_with_a_named_permanent_error() -> None:
    cap = 3 * budget.ASSUMED_POLL_ROUNDS_PER_NODE
    check_rounds(_drain(cap - 1, 3), "drain_node")  # one more round is allowed
    with pytest.raises(HistoryBudgetExceededError, match="drain_node polled 18 rounds") as err:
        check_rounds(_drain(cap, 3), "drain_node")
    assert isinstance(err.value, PermanentError) and "shop/api-1" in str(err.value)


def test_no_cap_outside_a_wave_and_none_on_the_first_round() -> None:
    check_rounds(_drain(10_000, None), "drain_node")
    check_rounds(DrainNodeInput(ctx=CTX, node=NODE, round_scale=1), "drain_node")


def test_each_loop_gets_its_own_measured_rounds_times_the_scale() -> None:
    prev = WaitNewNodesOutput(started_at=NOW, deadline=NOW, attempt=1)
    assert round_cap(WaitNewNodesInput(ctx=CTX, batch=[NODE], wait=prev, round_scale=4), 4) == 4 * 12
    redis = MoveRedisPodsInput(
        ctx=CTX, node=NODE, redis=MoveRedisPodsOutput(started_at=NOW, deadline=NOW), round_scale=4
    )
    assert round_cap(redis, 4) == 400


def test_a_node_held_by_do_not_disrupt_pods_may_drain_for_its_hold_too() -> None:
    held = NODE.model_copy(update={"held_rounds": 17})
    inp = DrainNodeInput(ctx=CTX, node=held, round_scale=3)
    assert round_cap(inp, 3) == 3 * (budget.ASSUMED_POLL_ROUNDS_PER_NODE + 17)
    assert round_cap(_drain(1, 3), 3) == 3 * budget.ASSUMED_POLL_ROUNDS_PER_NODE  # no hold, no extra


def test_a_failed_waves_error_is_the_childs_own() -> None:
    cause = '{"ExecutionArn": "arn:c", "Status": "FAILED", "Error": "DrainTimeoutError", "Cause": "pod x"}'
    assert StepError(Error="States.TaskFailed", Cause=cause).unwrapped() == StepError(
        Error="DrainTimeoutError", Cause="pod x"
    )
    for other in (
        StepError(Error="States.TaskFailed", Cause="not json"),
        StepError(Error="DrainTimeoutError"),
    ):
        assert other.unwrapped() == other
