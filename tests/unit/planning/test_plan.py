"""The planner: which instances, in what order and batches, and what blocks the roll."""

from __future__ import annotations

import pytest

from eks_rolling.labels import LABEL_HOSTNAME, TAINT_RETIRING
from eks_rolling.planning import Policy, Taint, Toleration, build_plan
from eks_rolling.planning.plan import estimate_history_events, max_nodes_per_execution, order_targets
from tests.factories.planning import instance, node_for, pdb, pod, sentinel_group, snapshot


def kinds(plan, severity: str = "blocker") -> list[str]:  # type: ignore[no-untyped-def]
    return [f.kind for f in plan.findings if f.severity == severity]


def test_only_outdated_in_service_instances_are_planned() -> None:
    # Given old, new and already-terminating instances
    insts = [
        instance("i-old1"),
        instance("i-new", outdated=False),
        instance("i-going", state="Terminating"),
        instance("i-old2", "us-east-1b"),
    ]
    # When planned
    plan = build_plan(snapshot(insts), Policy())
    # Then only the replaceable old ones are in it, and the terminating one is reported
    assert sorted(n.instance_id for n in plan.nodes) == ["i-old1", "i-old2"]
    assert plan.outdated == 2 and plan.has_work and not plan.blocked
    assert kinds(plan, "warning") == ["instance-skipped"]


def test_up_to_date_group_has_no_work() -> None:
    plan = build_plan(snapshot([instance("i-1", outdated=False)]), Policy())
    assert not plan.has_work and plan.batches == [] and plan.surge.peak_desired == plan.surge.desired_before


def test_batches_alternate_zones_and_start_with_the_emptiest_nodes() -> None:
    insts = [instance(f"i-a{k}", "us-east-1a") for k in range(3)] + [
        instance(f"i-b{k}", "us-east-1b") for k in range(2)
    ]
    pods = [pod("p1", "node-i-a0"), pod("p2", "node-i-a0"), pod("p3", "node-i-a1")]
    plan = build_plan(snapshot(insts, pods=pods), Policy(batch_size=2))
    assert [[n.instance_id for n in b] for b in plan.batches] == [
        ["i-a2", "i-b0"],
        ["i-a1", "i-b1"],
        ["i-a0"],
    ]
    assert [n.pods for n in plan.nodes] == [0, 0, 1, 0, 2]


def test_daemonset_mirror_and_finished_pods_are_not_counted_or_blocking() -> None:
    i = instance("i-1")
    pods = [
        pod("ds", "node-i-1", owner=("DaemonSet", "aws-node"), tolerations=(Toleration(operator="Exists"),)),
        pod("static", "node-i-1", owner=None, mirror=True),
        pod("done", "node-i-1", owner=None, phase="Succeeded"),
        pod("web", "node-i-1"),
    ]
    plan = build_plan(snapshot([i], pods=pods), Policy())
    assert plan.nodes[0].pods == 1 and not plan.blocked


@pytest.mark.parametrize(
    ("pods", "pdbs", "policy", "expected"),
    [
        ([pod("lonely", "node-i-1", owner=None)], [], Policy(), ["unmanaged-pod"]),
        ([pod("cache", "node-i-1", has_emptydir=True)], [], Policy(), ["emptydir"]),
        ([pod("cache", "node-i-1", has_emptydir=True)], [], Policy(delete_emptydir_data=True), []),
        (
            [pod("redis-0", "node-i-1", owner=("StatefulSet", "redis"), redis_group="redis")],
            [],
            Policy(),
            ["redis"],
        ),
        (
            [pod("agent", "node-i-1", tolerations=(Toleration(operator="Exists"),))],
            [],
            Policy(),
            ["tolerates-taint"],
        ),
        (
            [
                pod(
                    "agent",
                    "node-i-1",
                    tolerations=(Toleration(key=TAINT_RETIRING, operator="Exists"),),
                )
            ],
            [],
            Policy(),
            ["tolerates-taint"],
        ),
        (
            [pod("agent", "node-i-1", tolerations=(Toleration(key="other", operator="Exists"),))],
            [],
            Policy(),
            [],
        ),
        (
            [pod("pinned", "node-i-1", node_selector={LABEL_HOSTNAME: "node-i-1"})],
            [],
            Policy(),
            ["pinned-to-node"],
        ),
        ([pod("web-1", "node-i-1")], [pdb("web"), pdb("web-too", app="web")], Policy(), ["multiple-pdbs"]),
        (
            [pod("web-1", "node-i-1")],
            [pdb("web", allowed=0, healthy=3, desired=3, expected=3)],
            Policy(),
            ["pdb-no-headroom"],
        ),
        ([pod("web-1", "node-i-1")], [pdb("web", allowed=0, healthy=2, desired=2, expected=3)], Policy(), []),
    ],
    ids=[
        "unmanaged",
        "emptydir",
        "emptydir-allowed",
        "redis",
        "blanket-toleration",
        "our-taint-tolerated",
        "other-toleration",
        "pinned",
        "two-pdbs",
        "pdb-no-headroom",
        "pdb-transient",
    ],
)
def test_blockers(pods, pdbs, policy, expected) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(snapshot([instance("i-1")], pods=pods, pdbs=pdbs), policy)
    assert kinds(plan) == expected
    assert plan.blocked == bool(expected)


def test_a_pdb_blocking_several_pods_is_reported_once_and_transient_ones_warn() -> None:
    insts = [instance("i-1"), instance("i-2")]
    pods = [pod("a", "node-i-1"), pod("b", "node-i-2"), pod("c", "node-i-2", owner=("Deployment", "api"))]
    pdbs = [
        pdb("web", allowed=0, healthy=2, desired=2, expected=2),
        pdb("api", allowed=0, healthy=1, desired=1, expected=2),
    ]
    plan = build_plan(snapshot(insts, pods=pods, pdbs=pdbs), Policy())
    assert kinds(plan) == ["pdb-no-headroom"]
    assert kinds(plan, "warning") == ["pdb-no-disruptions-now"]
    assert "default/web" in plan.blockers[0].message and "needs 2 of 2" in plan.blockers[0].message


def test_surge_above_max_raises_max_or_blocks() -> None:
    insts = [instance(f"i-{k}") for k in range(4)]
    raised = build_plan(snapshot(insts, max_size=5), Policy(batch_size=3))
    assert raised.surge.peak_desired == 7 and raised.surge.raise_max_to == 7
    assert kinds(raised, "warning") == ["raise-max-size"] and not raised.blocked
    refused = build_plan(snapshot(insts, max_size=5), Policy(batch_size=3, raise_max_size=False))
    assert kinds(refused) == ["max-size"]


def test_instance_without_node_is_planned_with_a_warning() -> None:
    i = instance("i-lost")
    plan = build_plan(snapshot([i], nodes=[]), Policy())
    assert plan.nodes[0].node_name is None and kinds(plan, "warning") == ["no-node"]


def test_missing_autoscaler_is_a_warning() -> None:
    plan = build_plan(snapshot([instance("i-1")], autoscaler=False), Policy())
    assert kinds(plan, "warning") == ["no-autoscaler"]


def test_history_budget() -> None:
    # Larger batches amortise the per-batch states, so more nodes fit in one execution.
    assert max_nodes_per_execution(1) < max_nodes_per_execution(5)
    assert estimate_history_events(max_nodes_per_execution(2), -(-max_nodes_per_execution(2) // 2)) <= 25_000
    # ... and a larger node group runs as waves (child executions), each within its own budget
    insts = [instance(f"i-{k}") for k in range(400)]
    plan = build_plan(snapshot(insts), Policy(batch_size=1))
    assert kinds(plan) == [] and len(plan.waves) > 1
    assert [n for w in plan.waves for b in w.batches for n in b] == plan.nodes


def test_history_budget_counts_redis_moves() -> None:
    # Every managed Redis pod on an old node costs MoveRedisPods rounds, a Sentinel master most;
    # the field-report demo (6 nodes, 3 batches, 13 Redis pods, 1 master) measured 2212 events in
    # the realistic timing profile.
    plain = estimate_history_events(6, 3)
    demo = estimate_history_events(6, 3, redis_pods=13, sentinel_masters=1)
    assert plain < estimate_history_events(6, 3, redis_pods=13) < demo
    assert 2212 <= demo < 25_000
    # ... so a node group that fits without Redis may not with it
    assert estimate_history_events(100, 100) <= 25_000 < estimate_history_events(100, 100, redis_pods=60)


def test_history_budget_with_real_boot_times_fits_70_to_110_nodes_at_batch_size_1() -> None:
    # production-review.md item 2: real EC2 boots (60-120 s at 10 s polls) cost up to 12
    # new-nodes rounds per batch, not the 4 that 2 s sandbox boots showed.
    assert 70 <= max_nodes_per_execution(1) <= 110


def test_order_targets_is_a_permutation() -> None:
    plan = build_plan(snapshot([instance("i-1", "a"), instance("i-2", "b"), instance("i-3", "b")]), Policy())
    assert sorted(order_targets(plan.nodes), key=lambda n: n.instance_id) == sorted(
        plan.nodes, key=lambda n: n.instance_id
    )


def test_toleration_semantics() -> None:
    t = Taint(TAINT_RETIRING, "NoSchedule", "run-1")
    assert Toleration(operator="Exists").tolerates(t)
    assert Toleration(key=TAINT_RETIRING, value="run-1").tolerates(t)
    assert not Toleration(key=TAINT_RETIRING, value="run-2").tolerates(t)
    assert not Toleration(key=TAINT_RETIRING, operator="Exists", effect="NoExecute").tolerates(t)
    assert node_for(instance("i-9")).ready


def test_healthy_redis_groups_do_not_block_when_redis_steps_are_enabled() -> None:
    plan = build_plan(sentinel_group(), Policy(redis_supported=True))
    assert not plan.blocked


def test_an_unhealthy_redis_group_blocks_once_per_problem() -> None:
    plan = build_plan(
        sentinel_group(problems=("sentinel 127.3.0.4 reports NOQUORUM",), masters=()),
        Policy(redis_supported=True),
    )
    assert kinds(plan) == ["redis-unhealthy"]
    assert "redis/redis: sentinel 127.3.0.4 reports NOQUORUM" in plan.blockers[0].message


def test_the_node_hosting_a_sentinel_master_goes_last() -> None:
    # Without the rule the emptier master node would go first; with it the replica moves first.
    plan = build_plan(sentinel_group(), Policy(batch_size=1, redis_supported=True))
    assert [n.instance_id for n in plan.nodes][-1] == "i-m"
