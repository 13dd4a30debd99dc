"""No state of the roll grows with pods x nodes, and at batch size 50 with 100 pods per node every
one stays far below Step Functions' 256 KiB (`States.DataLimitExceeded` is terminal: no Catch, no
Rollback). Sizes come from the step models, the real planner and the ASL's own Parameters
(bench/state_size.py prints the same table)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from bench import state_size
from eks_rolling import models
from eks_rolling.models import Finding
from eks_rolling.planning import plan as planner
from eks_rolling.planning import waves

FAR_BELOW = 64 * 1024  # a quarter of the limit


@pytest.fixture(scope="module")
def definition() -> dict[str, object]:
    return json.loads(state_size.ASL.read_text())  # type: ignore[no-any-return]


def test_every_state_stays_far_below_the_limit_at_batch_50_and_100_pods_per_node(
    definition: dict[str, object],
) -> None:
    sizes = state_size.sizes(50, 100, definition)
    assert len(sizes) == 4
    assert all(n < FAR_BELOW for n in sizes.values()), sizes


def test_a_batchs_result_does_not_grow_with_pods(definition: dict[str, object]) -> None:
    few, many = (state_size.size(state_size.batch_iteration(definition, 50, p)) for p in (10, 250))
    assert many - few < 1024  # only the digits of the counts differ


def test_the_plan_does_not_grow_with_pods_even_when_every_pod_blocks() -> None:
    few, many = (state_size.size(state_size.plan_output(50, p).model_dump(mode="json")) for p in (10, 250))
    assert many - few < 1024


def test_positive_control_the_evicted_lists_in_nodereplaced_would_exceed_the_limit(
    definition: dict[str, object],
) -> None:
    # Given the ASL as it was: NodeReplaced passing on the node's whole evicted list
    old = copy.deepcopy(definition)
    node_replaced = state_size._states(old, "ReplaceBatches", "ReplaceNodes")["NodeReplaced"]
    node_replaced["Parameters"] = {**node_replaced["Parameters"], "evicted.$": "$.drain.evicted"}
    # Then one batch of 50 nodes is over 256 KiB: the measurement can fail
    assert state_size.size(state_size.batch_iteration(old, 50, 100)) > state_size.LIMIT


def test_positive_control_unbounded_findings_would_exceed_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "MAX_FINDINGS_PER_KIND", 10**9)
    assert state_size.size(state_size.plan_output(50, 100).model_dump(mode="json")) > state_size.LIMIT


def test_findings_beyond_the_cap_are_counted_and_still_block() -> None:
    blockers = [
        Finding(severity="blocker", kind="emptydir", message=f"pod p{i} uses emptyDir") for i in range(25)
    ]
    warning = Finding(severity="warning", kind="no-autoscaler", message="cluster-autoscaler not found")
    out = planner.bounded([*blockers, warning])
    assert out[: planner.MAX_FINDINGS_PER_KIND] == blockers[: planner.MAX_FINDINGS_PER_KIND]
    assert warning in out
    (summary,) = [f for f in out if f.message.startswith("...")]
    assert summary.severity == "blocker" and summary.kind == "emptydir"
    assert "15 more emptydir" in summary.message


def test_a_plan_over_one_executions_history_runs_as_waves() -> None:
    plan = state_size.plan_output(1, 10, nodes=400)
    assert plan.outdated == 400 and not any(f.kind == "history-limit" for f in plan.findings)
    assert len(plan.waves) > 1 and sum(w.nodes for w in plan.waves) == 400


def test_a_batch_too_large_for_one_wave_carries_no_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a guard that asks more rounds of every loop than a wave of one batch of 50 allows
    monkeypatch.setattr(waves, "GUARD_FACTOR", 10)
    plan = state_size.plan_output(50, 10, nodes=50)
    assert plan.blocked and any(f.kind == "history-limit" for f in plan.findings)
    assert plan.batches == [] and plan.waves == []


@pytest.mark.parametrize("batch_size", [1, 5, 50])
def test_no_state_of_a_1000_node_roll_with_30_pods_per_node_exceeds_64_kib(batch_size: int) -> None:
    # Given a 1,000-node plan, 30 pods per node, as PlanRoll returns it (waves' batches in S3)
    plan = state_size.plan_output(batch_size, 30, nodes=1000, emptydir=False)
    assert not plan.blocked and sum(w.nodes for w in plan.waves) == 1000
    assert all(w.key and not w.batches for w in plan.waves)
    # Then the roll's plan state, one ASG's state at its end and the largest wave's input (its
    # batches read back) all stay under 64 KiB
    asg = {**state_size.asg_iteration(batch_size, 30), "plan": plan.model_dump(mode="json")}
    for what in (plan.model_dump(mode="json"), asg, state_size.wave_input(batch_size, 30, 1000)):
        assert state_size.size(what) < FAR_BELOW


def test_positive_control_a_1000_node_plan_carried_inline_exceeds_64_kib() -> None:
    plan = planner.build_plan(state_size._snapshot(1000, 1, 30), planner.Policy(batch_size=1))
    assert (
        state_size.size(waves.plan_state(plan, "arn:x:execution:m:roll").model_dump(mode="json")) > FAR_BELOW
    )


def test_the_state_after_a_1000_node_rollback_stays_under_64_kib() -> None:
    # Given a 1,000-node roll whose waves ran together and one failed: Rollback untainted every
    # old node, gave back every surge instance and stopped 19 waves
    state = state_size.rollback_iteration(50, 30, 1000)
    # Then the names are counted, the first few kept, and the state is under 64 KiB
    assert state["rollback"]["untainted_count"] == 1000
    assert len(state["rollback"]["untainted"]) == models.STATE_LIST_MAX
    assert state_size.size(state) < FAR_BELOW


def test_a_wait_for_1000_new_instances_stays_under_64_kib() -> None:
    # Given waves together at 1,000 nodes: each wave's WaitNewNodes checks all 1,000 new instances
    state = state_size.wait_iteration(50, 30, 1000)
    # Then its detail names the first few and counts the rest
    assert state["wait"]["detail"][-1] == f"... and {1000 - models.STATE_LIST_MAX} more"
    assert state_size.size(state) < FAR_BELOW


@pytest.mark.parametrize("state", [state_size.rollback_iteration, state_size.wait_iteration])
def test_positive_control_unbounded_lists_in_those_states_exceed_64_kib(
    monkeypatch: pytest.MonkeyPatch, state: Callable[[int, int, int], dict[str, object]]
) -> None:
    monkeypatch.setattr(models, "STATE_LIST_MAX", 10**9)
    assert state_size.size(state(50, 30, 1000)) > FAR_BELOW
