"""`eks-rolling plan`'s text: every operator control that applies shows in it."""

from __future__ import annotations

from dataclasses import replace

from eks_rolling.cli import render_plan
from eks_rolling.labels import EXCLUDE_NODE, LABEL_TOPOLOGY_ZONE, TAG_NODE_SELECTOR
from eks_rolling.planning import Policy, Scope, build_plan
from eks_rolling.planning.selectors import parse_selector
from tests.factories.planning import instance, node_for, pod, snapshot


def test_the_plan_text_shows_scope_do_not_disrupt_pods_and_per_az_sequencing() -> None:
    insts = [instance("i-a0", "us-east-1a"), instance("i-a1", "us-east-1a"), instance("i-b0", "us-east-1b")]
    nodes = [node_for(i, labels={LABEL_TOPOLOGY_ZONE: i.az}) for i in insts]
    nodes[1] = replace(nodes[1], annotations={EXCLUDE_NODE: "true"})
    held = pod("report", "node-i-a0", owner=("Job", "report"), do_not_disrupt=True, disrupt_deadline="2h")
    scope = Scope(
        node_selector=parse_selector(f"{LABEL_TOPOLOGY_ZONE}=us-east-1a"),
        source={"node_selector": f"tag {TAG_NODE_SELECTOR}"},
    )
    plan = build_plan(
        snapshot(insts, nodes=nodes, pods=[held]),
        Policy(scope=scope, az_sequential=True, do_not_disrupt_on_deadline="evict"),
    )
    text = render_plan(plan, "prod")
    assert "per-AZ sequencing" in text
    assert "out of scope (left on the old template): 2" in text
    assert f"i-a1 node-i-a1 us-east-1a: node node-i-a1 has {EXCLUDE_NODE}=true" in text
    assert f"i-b0 node-i-b0 us-east-1b: does not match the node selector (tag {TAG_NODE_SELECTOR})" in text
    assert (
        "default/report on node-i-a0: until it finishes or 2h after its node's drain starts, then evict"
        in text
    )


def test_a_plan_with_nothing_in_scope_says_so() -> None:
    insts = [instance("i-1")]
    plan = build_plan(snapshot(insts), Policy(scope=Scope(instance_ids=frozenset({"i-9"}))))
    text = render_plan(plan, "prod")
    assert "1 outdated instance(s), none in scope: nothing to do." in text
    assert "i-1 node-i-1 us-east-1a: not in the instance ids (setting)" in text


def test_the_plan_text_shows_the_maintenance_windows_and_where_they_came_from() -> None:
    plan = build_plan(snapshot([instance("i-1")]), Policy())
    assert "maintenance windows" not in render_plan(plan, "prod")
    windowed = plan.model_copy(
        update={
            "maintenance_windows": "Mon-Fri 22:00/4h Europe/Berlin",
            "maintenance_windows_from": "tag eks-rolling/maintenance-windows",
        }
    )
    assert (
        "maintenance windows (tag eks-rolling/maintenance-windows): Mon-Fri 22:00/4h Europe/Berlin;"
        " a wave starts only inside one" in render_plan(windowed, "prod")
    )


def test_the_plan_text_lists_the_hooks_that_apply_and_where_they_came_from() -> None:
    from eks_rolling.labels import TAG_PRE_DRAIN_HOOKS
    from eks_rolling.models import Hooks

    plan = build_plan(snapshot([instance("i-1")]), Policy())
    assert "hooks" not in render_plan(plan, "prod")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:check"
    hooked = plan.model_copy(
        update={
            "hooks": Hooks(
                pre_drain=[arn],
                pre_drain_from=f"tag {TAG_PRE_DRAIN_HOOKS}",
                post_replace=["https://hooks.example.com/done"],
                post_replace_from="setting post_replace_hooks",
            )
        }
    )
    text = render_plan(hooked, "prod")
    assert f"pre-drain hooks (tag {TAG_PRE_DRAIN_HOOKS}), per node before any eviction" in text
    assert f"    - {arn}" in text
    assert "post-replace hooks (setting post_replace_hooks), per node once it is replaced:" in text
    assert "    - https://hooks.example.com/done" in text


def test_the_plan_text_shows_the_canary_wave_and_the_health_gate() -> None:
    insts = [instance(f"i-{z}{k}", f"us-east-1{z}") for z in "ab" for k in range(2)]
    plan = build_plan(snapshot(insts), Policy(canary_per_az=1))
    assert "health gate" not in render_plan(plan, "prod")  # no alarms: no gate, no canary shown
    gated = plan.model_copy(
        update={
            "health_alarms": ["shop-5xx"],
            "health_alarms_from": "setting health_alarms",
            "health_bake_s": 300,
            "revert_on_alarm": True,
            "previous_version": "1",
        }
    )
    text = render_plan(gated, "prod")
    assert "canary wave (1 per zone" in text
    assert "i-a0 node-i-a0 us-east-1a, i-b0 node-i-b0 us-east-1b" in text
    assert (
        "health gate (setting health_alarms): shop-5xx must stay OK for 300 s after each of 2 wave(s)" in text
    )
    assert "points back at version 1" in text
