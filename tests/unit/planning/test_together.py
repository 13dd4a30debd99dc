"""Waves together (planning.together): one surge for every old node, waves as concurrent children,
only when capacity and the roll's safety rules allow; otherwise one at a time, saying why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eks_rolling.planning import Policy, build_plan
from eks_rolling.planning.resources import MIB, Resources, instance_capacity
from tests.factories.planning import instance, node_for, pod, sentinel_group, snapshot

M5_LARGE = instance_capacity("m5.large")
assert M5_LARGE is not None
ZONES = ("us-east-1a", "us-east-1b")


def _snap(n: int, *, max_size: int = 100, cpu_m: int = 400, new: int = 0, terminating: int = 0):  # type: ignore[no-untyped-def]
    """n old nodes with 3 pods each, `new` up-to-date ones, `terminating` old ones going."""
    assert M5_LARGE is not None
    insts = [instance(f"i-{k:03d}", ZONES[k % 2]) for k in range(n)]
    insts += [instance(f"i-new{k}", ZONES[k % 2], outdated=False) for k in range(new)]
    insts += [instance(f"i-gone{k}", ZONES[k % 2], state="Terminating") for k in range(terminating)]
    nodes = [node_for(i, allocatable=M5_LARGE.allocatable, max_pods=M5_LARGE.max_pods) for i in insts]
    pods = [
        pod(f"web-{i.instance_id}-{k}", f"node-{i.instance_id}", requests=Resources(cpu_m, 128 * MIB))
        for i in insts[:n]
        for k in range(3)
    ]
    s = snapshot(insts, pods=pods, nodes=nodes, max_size=max_size, desired=n + new)
    return replace(s, asg=replace(s.asg, target_instance_type="m5.large", availability_zones=ZONES))


def _policy(**kw):  # type: ignore[no-untyped-def]
    return Policy(**{"batch_size": 2, "max_nodes_per_wave": 2, "wave_concurrency": 4, **kw})


def _note(plan):  # type: ignore[no-untyped-def]
    return [f.message for f in plan.findings if f.kind == "waves-one-at-a-time"]


def test_waves_run_together_with_one_surge_for_every_old_node() -> None:
    # Given 10 old nodes in waves of 2 and room for all of their replacements
    plan = build_plan(_snap(10), _policy())
    # Then 4 of the 5 waves run at once and the group surges to 20 in one go
    assert len(plan.waves) == 5 and plan.wave_concurrency == 4
    assert plan.surge.peak_desired == 20 and plan.surge.raise_max_to is None
    # ...and each wave's floor is desired + old instances: 10 + 10 now, 10 + 3 with 3 old left
    assert {w.surge_over_old for w in plan.waves} == {10}
    assert not plan.blocked and _note(plan) == []


def test_the_floor_leaves_out_terminating_instances_and_counts_new_ones() -> None:
    # Given 6 old, 2 already up to date, 1 old instance already terminating (desired 8)
    plan = build_plan(_snap(6, new=2, terminating=1), _policy())
    # Then the surge is to 8 + 6 and the floor is that less the 6 live old instances
    assert plan.wave_concurrency == 3 and plan.surge.peak_desired == 14
    assert {w.surge_over_old for w in plan.waves} == {8}


def test_one_wave_or_concurrency_one_keeps_the_per_batch_surge() -> None:
    for plan in (build_plan(_snap(2), _policy()), build_plan(_snap(10), _policy(wave_concurrency=1))):
        assert plan.wave_concurrency == 1 and {w.surge_over_old for w in plan.waves} == {0}
        assert plan.surge.peak_desired == plan.surge.desired_before + 2 and _note(plan) == []


def test_a_max_size_that_may_not_be_raised_keeps_waves_in_turn_saying_why() -> None:
    plan = build_plan(_snap(10, max_size=15), _policy(raise_max_size=False))
    assert plan.wave_concurrency == 1 and not plan.blocked
    assert plan.surge.peak_desired == 12
    assert _note(plan) == [
        "wave_concurrency 4 not used, waves run one at a time: a surge for every old node needs 20 "
        "instances, over MaxSize 15"
    ]


def test_a_max_size_that_may_be_raised_is_raised_for_the_whole_surge() -> None:
    plan = build_plan(_snap(10, max_size=15), _policy())
    assert plan.wave_concurrency == 4 and plan.surge.raise_max_to == 20
    [raise_note] = [f.message for f in plan.findings if f.kind == "raise-max-size"]
    assert raise_note.startswith("waves together surge to 20 instances; MaxSize 15 will be raised to 20")


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"canary_per_az": 1}, "the canary wave is judged before any other old node is touched"),
        ({"bake_rounds": 3}, "the health gate bakes each wave before the next"),
        ({"az_sequential": True}, "az_sequential finishes one zone before the next"),
        ({"max_batches_per_wave": 1}, "maintenance windows: no wave may start outside one"),
    ],
)
def test_each_safety_rule_keeps_waves_in_turn(rule: dict[str, object], reason: str) -> None:
    plan = build_plan(_snap(10), _policy(**rule))
    assert plan.wave_concurrency == 1 and {w.surge_over_old for w in plan.waves} == {0}
    assert _note(plan) == [f"wave_concurrency 4 not used, waves run one at a time: {reason}"]


def test_redis_pods_on_the_old_nodes_keep_waves_in_turn() -> None:
    plan = build_plan(sentinel_group(), _policy(batch_size=1, max_nodes_per_wave=1, redis_supported=True))
    assert len(plan.waves) == 3 and plan.wave_concurrency == 1
    assert _note(plan) == [
        "wave_concurrency 4 not used, waves run one at a time: Redis pods move one wave at a time "
        "(no two waves move members of one group)"
    ]
