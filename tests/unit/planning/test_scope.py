"""Scope (which old nodes a roll may touch), do-not-disrupt deadlines and per-AZ batches: pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from eks_rolling.labels import DO_NOT_DISRUPT, EXCLUDE_NODE, LABEL_TOPOLOGY_ZONE
from eks_rolling.planning import Policy, Scope, build_plan
from eks_rolling.planning.scope import DeadlineError, deadline_of, hold_rounds, hold_wait_s, parse_deadline
from eks_rolling.planning.selectors import SelectorError, parse_selector, selector_matches
from tests.factories.planning import instance, node_for, pod, snapshot

ZONE_A, ZONE_B = "us-east-1a", "us-east-1b"


def _zoned(insts, **over):  # type: ignore[no-untyped-def]
    return [node_for(i, labels={LABEL_TOPOLOGY_ZONE: i.az, "role": "worker"}, **over) for i in insts]


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("role=worker", {"role": "worker"}, True),
        ("role==worker", {"role": "web"}, False),
        ("role!=worker", {}, True),
        ("role in (web, worker),tier", {"role": "worker", "tier": "x"}, True),
        ("role notin (worker)", {"role": "worker"}, False),
        ("!spot", {"spot": "yes"}, False),
        (f"{LABEL_TOPOLOGY_ZONE}={ZONE_A}", {LABEL_TOPOLOGY_ZONE: ZONE_A}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_kubectl_selectors_parse_to_the_object_form(text: str, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(parse_selector(text), labels) is matches


@pytest.mark.parametrize("text", ["role in (", "a=b,,c", "a=b c", "=x", "a in ()", "a=b)", "-bad=x"])
def test_a_bad_selector_names_what_is_wrong(text: str) -> None:
    with pytest.raises(SelectorError, match="'"):
        parse_selector(text)


def test_scope_limits_by_selector_and_ids_and_excludes_by_annotation_label_and_selector() -> None:
    insts = [instance(f"i-a{k}", ZONE_A) for k in range(3)] + [instance("i-b0", ZONE_B)]
    nodes = [
        *_zoned(insts[:1]),
        node_for(insts[1], labels={LABEL_TOPOLOGY_ZONE: ZONE_A}, annotations={EXCLUDE_NODE: "true"}),
        node_for(insts[2], labels={LABEL_TOPOLOGY_ZONE: ZONE_A, "spot": "yes"}),
        *_zoned(insts[3:]),
    ]
    scope = Scope(
        node_selector=parse_selector(f"{LABEL_TOPOLOGY_ZONE}={ZONE_A}"),
        exclude_selector=parse_selector("spot"),
        source={"node_selector": "tag eks-rolling/node-selector"},
    )
    plan = build_plan(snapshot(insts, nodes=nodes), Policy(scope=scope))
    assert [n.instance_id for n in plan.nodes] == ["i-a0"]
    assert plan.outdated == 4 and plan.out_of_scope == 3 and plan.has_work
    why = {e.instance_id: e.reason for e in plan.excluded}
    assert EXCLUDE_NODE in why["i-a1"]
    assert "exclude selector" in why["i-a2"]
    assert why["i-b0"] == "does not match the node selector (tag eks-rolling/node-selector)"
    assert "out-of-scope" in [f.kind for f in plan.findings]
    # Surge is sized on what is in scope only.
    assert plan.surge.peak_desired == 5


def test_instance_ids_scope_and_an_empty_scope_has_no_work() -> None:
    insts = [instance("i-1"), instance("i-2")]
    plan = build_plan(snapshot(insts), Policy(scope=Scope(instance_ids=frozenset({"i-2"}))))
    assert [n.instance_id for n in plan.nodes] == ["i-2"]
    none = build_plan(snapshot(insts), Policy(scope=Scope(instance_ids=frozenset({"i-9"}))))
    assert not none.has_work and none.batches == [] and none.out_of_scope == 2


def test_an_instance_without_a_node_is_out_of_a_label_scope() -> None:
    insts = [instance("i-1")]
    plan = build_plan(snapshot(insts, nodes=[]), Policy(scope=Scope(node_selector=parse_selector("role"))))
    assert plan.nodes == [] and "has no node" in plan.excluded[0].reason


def test_az_sequential_batches_never_mix_zones_and_finish_one_zone_first() -> None:
    insts = [instance(f"i-a{k}", ZONE_A) for k in range(3)] + [instance(f"i-b{k}", ZONE_B) for k in range(3)]
    plan = build_plan(snapshot(insts), Policy(batch_size=2, az_sequential=True))
    zones = [{n.az for n in b} for b in plan.batches]
    assert zones == [{ZONE_A}, {ZONE_A}, {ZONE_B}, {ZONE_B}]
    assert plan.az_sequential
    # Without it, batches alternate zones (each batch's surge stays balanced).
    mixed = build_plan(snapshot(insts), Policy(batch_size=2))
    assert [{n.az for n in b} for b in mixed.batches] == [{ZONE_A, ZONE_B}] * 3


def test_do_not_disrupt_pods_are_listed_with_deadlines_and_budgeted() -> None:
    insts = [instance("i-1"), instance("i-2")]
    pods = [
        pod("job", "node-i-1", owner=("Job", "nightly"), do_not_disrupt=True, disrupt_deadline="2h"),
        pod("etl", "node-i-2", owner=("Job", "etl"), do_not_disrupt=True),
        pod("done", "node-i-2", owner=("Job", "old"), do_not_disrupt=True, phase="Succeeded"),
    ]
    policy = Policy(do_not_disrupt_timeout_s=600, do_not_disrupt_on_deadline="evict")
    plan = build_plan(snapshot(insts, pods=pods), policy)
    held = {h.ref: h for h in plan.held}
    assert set(held) == {"default/job", "default/etl"}
    assert held["default/job"].deadline.startswith("2h") and held["default/etl"].deadline.startswith("600s")
    assert {h.on_deadline for h in plan.held} == {"evict"}
    assert not plan.blocked
    plain = build_plan(snapshot(insts, pods=[p for p in pods if p.name != "job"][:0]), policy)
    rounds = hold_rounds(7200, 10, 300) + hold_rounds(600, 10, 300)
    assert plan.estimated_history_events - plain.estimated_history_events == rounds * 9
    # ... and each node's hold travels with it, to its wave's budget and its DrainNode guard
    nodes = {t.instance_id: t for w in plan.waves for b in w.batches for t in b}
    assert nodes["i-1"].held_rounds == hold_rounds(7200, 10, 300)
    assert nodes["i-2"].held_rounds == hold_rounds(600, 10, 300)


def test_an_absolute_deadline_is_budgeted_from_the_snapshot_time() -> None:
    taken = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    pods = [
        pod(
            "job",
            "node-i-1",
            owner=("Job", "j"),
            do_not_disrupt=True,
            disrupt_deadline="2026-12-07T03:00:00Z",
        )
    ]
    snap = replace(snapshot([instance("i-1")], pods=pods), taken_at=taken)
    plain = build_plan(snapshot([instance("i-1")]), Policy())
    plan = build_plan(snap, Policy())
    assert plan.held[0].deadline == "2026-12-07T03:00:00+00:00"
    assert plan.estimated_history_events - plain.estimated_history_events == hold_rounds(7200, 10, 300) * 9


def test_a_bad_deadline_annotation_blocks_the_plan() -> None:
    pods = [pod("job", "node-i-1", owner=("Job", "j"), do_not_disrupt=True, disrupt_deadline="tomorrow")]
    plan = build_plan(snapshot([instance("i-1")], pods=pods), Policy())
    assert plan.blocked and [f.kind for f in plan.blockers] == ["do-not-disrupt-deadline"]
    assert DO_NOT_DISRUPT  # the key users set (labels.py)


def test_deadlines_are_durations_from_the_drain_start_or_absolute_times() -> None:
    start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert parse_deadline("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_deadline("90s") == timedelta(seconds=90)
    assert parse_deadline("2026-12-07T03:00:00Z") == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    for bad in ("", "soon", "5d", "2026-12-07T03:00:00"):
        with pytest.raises(DeadlineError):
            parse_deadline(bad)
    p = pod("j", "n", do_not_disrupt=True, disrupt_deadline="45m")
    assert deadline_of(p, start, 60) == start + timedelta(minutes=45)
    assert deadline_of(pod("j", "n", do_not_disrupt=True), start, 60) == start + timedelta(seconds=60)


def test_the_hold_wait_doubles_to_its_cap_so_rounds_stay_few() -> None:
    assert [hold_wait_s(k, 10, 300) for k in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    # An hour-long job costs 17 checks (16 waits: 10+20+40+80+160 s, then 11 x 300 s), not 360
    # ten-second polls.
    assert hold_rounds(3600, 10, 300) == 17
    assert hold_rounds(0, 10, 300) == 1
