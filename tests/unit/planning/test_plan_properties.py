"""Properties of the planner over generated clusters (hypothesis)."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from eks_rolling.planning import ClusterSnapshot, Policy, build_plan
from eks_rolling.planning.plan import REPLACEABLE_STATES, is_evictable
from tests.factories.planning import instance, node_for, pod, snapshot

STATES = ["InService", "InService", "InService", "Pending", "Terminating", "Standby", "Terminated"]


@st.composite
def clusters(draw: st.DrawFn) -> ClusterSnapshot:
    n = draw(st.integers(0, 40))
    insts = [
        instance(
            f"i-{k:03d}",
            draw(st.sampled_from(["us-east-1a", "us-east-1b", "us-east-1c"])),
            outdated=draw(st.booleans()),
            state=draw(st.sampled_from(STATES)),
        )
        for k in range(n)
    ]
    nodes = [node_for(i) for i in insts if draw(st.integers(0, 9)) > 0]  # some instances never joined
    pods = []
    for nd in nodes:
        for k in range(draw(st.integers(0, 6))):
            kind = draw(
                st.sampled_from(
                    ["Deployment", "Deployment", "StatefulSet", "DaemonSet", "mirror", "finished"]
                )
            )
            if kind == "mirror":
                pods.append(pod(f"{nd.name}-m{k}", nd.name, owner=None, mirror=True))
            elif kind == "finished":
                pods.append(pod(f"{nd.name}-f{k}", nd.name, owner=("Job", "batch"), phase="Succeeded"))
            else:
                pods.append(pod(f"{nd.name}-p{k}", nd.name, owner=(kind, f"w{k}")))
    return snapshot(insts, pods=pods, nodes=nodes, max_size=draw(st.integers(max(n, 1), 80)))


@given(clusters(), st.integers(1, 7))
@settings(max_examples=300, deadline=None)
def test_batches_never_exceed_the_batch_size(snap: ClusterSnapshot, batch_size: int) -> None:
    plan = build_plan(snap, Policy(batch_size=batch_size))
    assert all(1 <= len(b) <= batch_size for b in plan.batches)
    # and peak capacity never exceeds desired + one batch
    assert plan.surge.peak_desired <= snap.asg.desired + batch_size


@given(clusters(), st.integers(1, 7))
@settings(max_examples=300, deadline=None)
def test_every_outdated_instance_is_planned_exactly_once(snap: ClusterSnapshot, batch_size: int) -> None:
    plan = build_plan(snap, Policy(batch_size=batch_size))
    planned = Counter(n.instance_id for n in plan.nodes)
    expected = {
        i.instance_id for i in snap.asg.instances if i.outdated and i.lifecycle_state in REPLACEABLE_STATES
    }
    assert set(planned) == expected
    assert all(c == 1 for c in planned.values())
    assert plan.has_work == bool(expected)


@given(clusters())
@settings(max_examples=300, deadline=None)
def test_daemonset_and_mirror_pods_are_never_counted_for_eviction(snap: ClusterSnapshot) -> None:
    plan = build_plan(snap, Policy(delete_emptydir_data=True))
    by_node = {n.node_name: n for n in plan.nodes}
    for node_name, target in by_node.items():
        on_node = [p for p in snap.pods if p.node == node_name]
        assert target.pods == sum(1 for p in on_node if is_evictable(p))
        assert not [p for p in on_node if (p.daemonset or p.mirror) and is_evictable(p)]
    # and they never produce a blocker
    assert not [
        f for f in plan.findings if f.severity == "blocker" and f.kind not in ("history-limit", "max-size")
    ]


@given(clusters(), st.integers(1, 5))
@settings(max_examples=200, deadline=None)
def test_consecutive_nodes_alternate_zones_while_zones_remain(snap: ClusterSnapshot, batch_size: int) -> None:
    plan = build_plan(snap, Policy(batch_size=batch_size))
    order = [n.az for n in plan.nodes]
    remaining = Counter(order)
    for a, b in itertools.pairwise(order):
        remaining[a] -= 1
        if a == b:
            # a zone repeats only once every other zone has run out
            assert all(c == 0 for z, c in remaining.items() if z != a)
