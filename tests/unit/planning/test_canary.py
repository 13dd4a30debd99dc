"""The canary wave: the first `canary_per_az` old nodes of each zone, cheapest first, alone in the
first wave(s); the health gate's bake after each wave (adaptive, bounded) and its alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eks_rolling.errors import HealthAlarmError, RollAbortedError
from eks_rolling.models import Control, NodeTarget
from eks_rolling.planning import Policy, build_plan
from eks_rolling.planning.gate import bake, bake_rounds
from eks_rolling.planning.waves import BAKE_EVENTS, BAKE_EVENTS_PER_ROUND, canary_split, parent_events
from tests.factories.planning import instance, node_for, pod, snapshot

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def _target(iid: str, az: str, pods: int = 0) -> NodeTarget:
    return NodeTarget(instance_id=iid, node_name=f"node-{iid}", az=az, pods=pods)


def test_the_canary_is_the_cheapest_old_node_of_each_zone_in_the_targets_order() -> None:
    targets = [_target("i-1", "a", 5), _target("i-2", "a", 1), _target("i-3", "b", 2), _target("i-4", "c", 9)]
    canary, rest = canary_split(targets, 1)
    assert [t.instance_id for t in canary] == ["i-2", "i-3", "i-4"]
    assert [t.instance_id for t in rest] == ["i-1"]


def test_a_sentinel_masters_node_is_a_canary_only_when_its_zone_has_nothing_else() -> None:
    targets = [_target("i-1", "a", 0), _target("i-2", "a", 3), _target("i-3", "b", 0)]
    canary, _ = canary_split(targets, 1, last={"node-i-1", "node-i-3"})
    assert [t.instance_id for t in canary] == ["i-2", "i-3"]


def test_zero_per_zone_is_no_canary_and_two_per_zone_takes_two() -> None:
    targets = [_target(f"i-{k}", ZONES[k % 2]) for k in range(6)]
    assert canary_split(targets, 0) == ([], targets)
    canary, rest = canary_split(targets, 2)
    assert sorted(t.az for t in canary) == sorted(ZONES[:2] * 2) and len(rest) == 2


def test_the_plan_puts_one_node_per_zone_alone_in_its_first_wave() -> None:
    # Given 9 old nodes over 3 zones, each with a different number of pods
    insts = [instance(f"i-{k}", ZONES[k % 3]) for k in range(9)]
    pods = [pod(f"p-{k}-{j}", f"node-i-{k}") for k in range(9) for j in range(k % 4)]
    snap = snapshot(insts, pods=pods)
    # When it is planned with a canary of one per zone (batches of 2)
    plan = build_plan(snap, Policy(batch_size=2, canary_per_az=1))
    # Then the first wave is the canary, one node per zone, and no other wave is
    first, *others = plan.waves
    assert first.canary and not any(w.canary for w in others)
    canary = [n for b in first.batches for n in b]
    assert sorted(n.az for n in canary) == sorted(ZONES) and plan.canary_nodes == 3
    # ... the cheapest of each zone
    for n in canary:
        assert n.pods == min(t.pods for t in plan.nodes if t.az == n.az)
    # ... and every node is planned once
    assert sorted(n.instance_id for n in plan.nodes) == sorted(i.instance_id for i in insts)
    # Without a canary the same nodes fit one wave
    assert len(build_plan(snap, Policy(batch_size=2)).waves) == 1 < len(plan.waves)


def test_a_zone_with_fewer_old_nodes_gives_what_it_has() -> None:
    insts = [instance("i-0", ZONES[0]), instance("i-1", ZONES[1]), instance("i-2", ZONES[1])]
    plan = build_plan(snapshot(insts, nodes=[node_for(i) for i in insts]), Policy(canary_per_az=2))
    assert plan.canary_nodes == 3 and len(plan.waves) == 1 and plan.waves[0].canary


# --- the bake ----------------------------------------------------------------------------------


def test_a_wave_bakes_in_bounded_waits_then_goes() -> None:
    # Given a 300 s bake checked at most every 120 s
    states, now, prev = [], NOW, None
    while True:
        prev = bake([], "w01", now, prev, 300, 120)
        states.append(prev)
        if prev.action == "go":
            break
        now += timedelta(seconds=prev.wait_s + 7)  # each check itself takes a while
    # Then it waited 120, 120, then only what was left (60), never more rounds than budgeted
    assert [s.wait_s for s in states[:-1]] == [120, 120, 60]
    assert len(states) - 1 == bake_rounds(300, 120) == 3
    assert states[-1].reason == "healthy" and states[-1].bake_since == NOW.isoformat()
    assert states[-1].baked_s == 300


def test_the_bake_counts_the_waits_not_the_clock() -> None:
    # A clock that does not move with the (scaled) Waits still bakes in bake_rounds rounds
    prev = None
    for _ in range(bake_rounds(300, 120)):
        prev = bake([], "w01", NOW, prev, 300, 120)
        assert prev.action == "wait"
    assert bake([], "w01", NOW, prev, 300, 120).action == "go"


def test_an_alarm_in_alarm_stops_the_bake_naming_it() -> None:
    baking = bake([], "w01", NOW, None, 300, 60)
    with pytest.raises(HealthAlarmError, match="app-errors"):
        bake(["app-errors: Threshold Crossed"], "w01", NOW + timedelta(seconds=60), baking, 300, 60)


def test_no_bake_time_goes_at_once_and_the_budget_counts_each_round() -> None:
    assert bake([], "w01", NOW, None, 0, 60).action == "go"
    assert bake_rounds(0, 60) == 0
    assert parent_events(2, 5) - parent_events(2) == 2 * (BAKE_EVENTS + 5 * BAKE_EVENTS_PER_ROUND)


def test_the_plan_budgets_each_waves_bake() -> None:
    insts = [instance(f"i-{k}", ZONES[k % 2]) for k in range(6)]
    plain = build_plan(snapshot(insts), Policy(canary_per_az=1))
    baked = build_plan(snapshot(insts), Policy(canary_per_az=1, bake_rounds=5))
    per_wave = BAKE_EVENTS + 5 * BAKE_EVENTS_PER_ROUND
    assert baked.estimated_history_events - plain.estimated_history_events == len(plain.waves) * per_wave


def test_an_abort_stops_the_bake_and_a_pause_waits_for_the_next_gate() -> None:
    baking = bake([], "w01", NOW, None, 300, 60)
    with pytest.raises(RollAbortedError, match="bob"):
        bake([], "w01", NOW, baking, 300, 60, Control(action="abort", by="bob"))
    assert bake([], "w01", NOW, baking, 300, 60, Control(action="pause", by="alice")).reason == "baking"
