"""Waves: the plan's batches grouped into child executions, each within its own history budget,
with a per-loop round cap that keeps the worst case under the guard."""

from __future__ import annotations

import re

import pytest

from eks_rolling.models import NodeTarget
from eks_rolling.planning import Policy, budget, build_plan, waves
from tests.factories.planning import instance, snapshot

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _batches(nodes: int, size: int, redis_rounds: int = 0) -> list[list[NodeTarget]]:
    targets = [
        NodeTarget(instance_id=f"i-{k:017d}", node_name=f"n{k}", az="a", pods=30, redis_rounds=redis_rounds)
        for k in range(nodes)
    ]
    return [targets[i : i + size] for i in range(0, nodes, size)]


def worst_case(shape: waves.WaveShape) -> int:
    """Every loop of the wave at its cap (what eks_rolling.guard allows)."""
    return waves.structural_events(shape.batches) + budget.EVENTS_PER_WAIT_ROUND * shape.round_scale * (
        waves.loop_rounds(shape.batches)
    )


@pytest.mark.parametrize(
    ("nodes", "size", "redis"), [(1000, 1, 0), (1000, 10, 0), (1000, 50, 0), (60, 2, 100)]
)
def test_every_wave_fits_the_guard_even_with_every_loop_at_its_cap(nodes: int, size: int, redis: int) -> None:
    shapes = waves.group_waves(_batches(nodes, size, redis))
    assert sum(s.nodes for s in shapes) == nodes
    for s in shapes:
        assert worst_case(s) <= waves.HISTORY_GUARD_EVENTS < waves.HARD_LIMIT
        assert s.expected_events <= waves.WAVE_HISTORY_BUDGET
        assert s.round_scale >= waves.GUARD_FACTOR


def test_a_thousand_nodes_make_a_parent_history_that_grows_by_a_constant_per_wave() -> None:
    shapes = waves.group_waves(_batches(1000, 1))
    assert len(shapes) > 1
    assert waves.parent_events(len(shapes)) == len(shapes) * waves.PARENT_EVENTS_PER_WAVE < 1_000


def test_waves_keep_the_plan_order_and_respect_a_node_cap() -> None:
    batches = _batches(12, 2)
    shapes = waves.group_waves(batches, max_nodes=4)
    assert [s.nodes for s in shapes] == [4, 4, 4]
    assert [list(b) for s in shapes for b in s.batches] == batches


def test_with_a_batch_cap_each_wave_holds_one_batch_even_a_small_one() -> None:
    # per-AZ sequencing can leave batches smaller than the batch size (2): a node cap of 2 would
    # put two of them in one wave, a batch cap never does
    small = _batches(3, 1)
    assert [len(s.batches) for s in waves.group_waves(small, max_nodes=2)] == [2, 1]
    assert [len(s.batches) for s in waves.group_waves(small, max_batches=1)] == [1, 1, 1]
    assert [len(s.batches) for s in waves.group_waves(small)] == [3]


def test_a_batch_too_big_for_any_wave_blocks_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waves, "GUARD_FACTOR", 50)
    plan = build_plan(snapshot([instance(f"i-{k}") for k in range(4)]), Policy(batch_size=4))
    assert [f.kind for f in plan.blockers] == ["history-limit"] and plan.waves == []


def test_a_plan_names_its_waves_in_order_and_carries_each_node_once() -> None:
    plan = build_plan(
        snapshot([instance(f"i-{k}") for k in range(6)]), Policy(batch_size=2, max_nodes_per_wave=2)
    )
    state = waves.plan_state(plan, "arn:aws:states:eu-west-1:1:execution:eks-rolling-prod:run-1")
    assert [w.name for w in state.waves] == [f"run-1-{plan.asg_name}-w0{i}" for i in (1, 2, 3)]
    assert state.batches == [] and state.nodes == plan.nodes


def test_child_names_are_valid_unique_and_at_most_80_characters() -> None:
    long_roll = "arn:aws:states:eu-west-1:1:execution:eks-rolling:" + "r" * 80
    names = {waves.child_name(long_roll, f"{'g' * 70}-{k}", i) for k in range(3) for i in range(1, 120)}
    assert len(names) == 3 * 119
    assert all(NAME.match(n) for n in names)
    assert waves.child_name("arn:...:execution:sm:roll-1", "nodes a/b", 3) == "roll-1-nodes-a-b-w03"


def test_hook_steps_are_in_the_budget_and_the_guard() -> None:
    # Given the same 40 nodes, with no hooks and with both hook steps on every node
    batches = _batches(40, 2)
    plain, hooked = waves.group_waves(batches), waves.group_waves(batches, hook_steps=2)
    # Then each node's two hook Tasks (5 events each) are expected, and the worst case still fits
    assert sum(s.expected_events for s in hooked) - sum(s.expected_events for s in plain) == 40 * 10
    for s in hooked:
        worst = waves.structural_events(
            s.batches, hook_steps=2
        ) + budget.EVENTS_PER_WAIT_ROUND * s.round_scale * (waves.loop_rounds(s.batches))
        assert worst <= waves.HISTORY_GUARD_EVENTS


def test_a_plan_with_hooks_expects_their_events() -> None:
    snap = snapshot(instances=[instance(f"i-{k}", outdated=True) for k in range(4)])
    without, with_hooks = build_plan(snap, Policy()), build_plan(snap, Policy(hook_steps=1))
    assert (
        with_hooks.estimated_history_events - without.estimated_history_events
        == 4 * budget.EVENTS_PER_HOOK_STEP
    )
