"""The planner's capacity prediction: will each batch's surge hold the pods its drain evicts?"""

from __future__ import annotations

from dataclasses import replace

from eks_rolling.planning import Policy, build_plan
from eks_rolling.planning.capacity import plan_capacity
from eks_rolling.planning.resources import MIB, Resources, instance_capacity
from tests.factories.planning import instance, node_for, pod, snapshot

M5_LARGE = instance_capacity("m5.large")
M5_XLARGE = instance_capacity("m5.xlarge")
assert M5_LARGE is not None and M5_XLARGE is not None


def _nodes(insts, cap=M5_LARGE):  # type: ignore[no-untyped-def]
    return [node_for(i, allocatable=cap.allocatable, max_pods=cap.max_pods) for i in insts]


def _snap(insts, pods, *, target="m5.large", cap=M5_LARGE, zones=("us-east-1a", "us-east-1b"), **kw):  # type: ignore[no-untyped-def]
    s = snapshot(insts, pods=pods, nodes=_nodes(insts, cap), **kw)
    return replace(s, asg=replace(s.asg, target_instance_type=target, availability_zones=zones))


def _req(cpu_m: int, mem_mi: int = 128) -> Resources:
    return Resources(cpu_m, mem_mi * MIB)


def capacity(plan):  # type: ignore[no-untyped-def]
    return [f for f in plan.findings if f.kind == "capacity"]


def test_same_type_with_room_surges_one_per_old_node_and_finds_nothing() -> None:
    insts = [instance("i-a1", "us-east-1a"), instance("i-b1", "us-east-1b")]
    pods = [pod(f"web-{k}", f"node-{i.instance_id}", requests=_req(400)) for i in insts for k in range(4)]
    snap = _snap(insts, pods)
    plan = build_plan(snap, Policy())
    assert not plan.blocked and capacity(plan) == []
    assert plan_capacity(snap, plan.batches).surges == [1, 1]
    assert plan.surge.peak_desired == 3


def test_a_smaller_instance_type_that_cannot_hold_the_batch_is_a_named_blocker() -> None:
    # Given an m5.xlarge whose pods ask for 4 x 900m, moving to t3.medium (1930m allocatable)
    insts = [instance("i-a1", "us-east-1a")]
    pods = [pod(f"web-{k}", "node-i-a1", requests=_req(900, 512)) for k in range(4)]
    snap = _snap(insts, pods, target="t3.medium", cap=M5_XLARGE)
    # When planned
    plan = build_plan(snap, Policy())
    # Then two t3.medium (the most one old node may surge) hold them, two per node (1800m)
    assert capacity(plan) == [] and plan.surge.peak_desired == 3
    # ...but at 1000m each only one fits per node: two pods are left, named with what is missing
    pods = [pod(f"web-{k}", "node-i-a1", requests=_req(1000, 512)) for k in range(4)]
    plan = build_plan(_snap(insts, pods, target="t3.medium", cap=M5_XLARGE), Policy())
    assert plan.blocked
    [finding] = capacity(plan)
    assert finding.message.startswith(
        "batch 1 (node-i-a1): a surge of 2 new node(s) cannot hold its evicted pods in any zone: "
        "missing 2000m cpu, 1024Mi memory for 2 pod(s)"
    ), finding.message


def test_zone_bound_pods_need_room_in_their_zone() -> None:
    # Given 2 old nodes in zone a and 1 in b: the ASG puts the next instance in b (fewest)
    insts = [instance("i-a1", "us-east-1a"), instance("i-a2", "us-east-1a"), instance("i-b1", "us-east-1b")]
    pods = [
        pod("db-0", "node-i-a1", requests=_req(500), zone="us-east-1a"),
        *[pod(f"web-{k}", "node-i-a2", requests=_req(100)) for k in range(2)],
    ]
    plan = build_plan(_snap(insts, pods, max_size=10), Policy())
    # Then the first batch (zone a's emptiest node) surges twice so that one lands in zone a
    assert [t.instance_id for t in plan.batches[0]] == ["i-a1"]
    assert plan_capacity(_snap(insts, pods, max_size=10), plan.batches).surges[0] == 2
    assert not plan.blocked and plan.surge.peak_desired == 5
    # ...and a pod pinned to a zone the group no longer launches in can never move
    lost = [pod("db-0", "node-i-a1", requests=_req(500, 1024), zone="us-east-1c")]
    plan = build_plan(_snap(insts, lost), Policy())
    [finding] = capacity(plan)
    assert finding.ref == "us-east-1c"
    assert (
        "in us-east-1c (pods bound to it by their volumes): missing 500m cpu, 1024Mi memory"
        in finding.message
    )


def test_earlier_batches_use_up_the_room_of_the_surge() -> None:
    # Given three old nodes each with 1500m of pods, batch size 1: no batch fits in the 430m a
    # previous surge left over, so each surges its own node
    insts = [instance(f"i-a{k}", "us-east-1a") for k in range(3)]
    pods = [pod(f"p{k}", f"node-i-a{k}", requests=_req(1500)) for k in range(3)]
    snap = _snap(insts, pods, zones=("us-east-1a",))
    plan = build_plan(snap, Policy())
    assert plan_capacity(snap, plan.batches).surges == [1, 1, 1] and not plan.blocked
    # A pod asking for more than any new node has is never placed, whatever the surge
    huge = [*pods, pod("huge", "node-i-a2", requests=_req(2500))]
    plan = build_plan(_snap(insts, huge, zones=("us-east-1a",)), Policy())
    [finding] = capacity(plan)
    assert "default/huge request more than a new node can hold (1930m cpu" in finding.message


def test_a_capacity_surge_over_max_size_blocks_when_raising_is_not_allowed() -> None:
    insts = [instance("i-a1", "us-east-1a"), instance("i-a2", "us-east-1a"), instance("i-b1", "us-east-1b")]
    pods = [
        pod("db-0", "node-i-a1", requests=_req(500), zone="us-east-1a"),
        *[pod(f"web-{k}", "node-i-a2", requests=_req(100)) for k in range(2)],
    ]
    plan = build_plan(_snap(insts, pods, max_size=4), Policy(raise_max_size=False))
    assert "max-size" in [f.kind for f in plan.blockers]
    plan = build_plan(_snap(insts, pods, max_size=4), Policy())
    assert plan.surge.raise_max_to == 5 and not plan.blocked


def test_daemonset_pods_take_room_on_every_new_node() -> None:
    # 1800m of movable pods fit a new m5.large (1930m) only without the node's DaemonSets
    insts = [instance("i-a1", "us-east-1a")]
    pods = [
        pod("web-0", "node-i-a1", requests=_req(1000)),
        pod("web-1", "node-i-a1", requests=_req(800)),
        pod("aws-node-x", "node-i-a1", owner=("DaemonSet", "aws-node"), requests=_req(200)),
    ]
    plan = build_plan(_snap(insts, pods, zones=("us-east-1a",)), Policy())
    assert plan_capacity(_snap(insts, pods, zones=("us-east-1a",)), plan.batches).surges == [2]
    assert not plan.blocked
