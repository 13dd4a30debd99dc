"""Builders with overrides for planner inputs (Karpenter's test.Pod(PodOptions{...}) idea)."""

from __future__ import annotations

from typing import Any

from eks_rolling.planning import (
    AsgView,
    ClusterSnapshot,
    InstanceView,
    NodeView,
    OwnerRef,
    PdbView,
    PodView,
    RedisGroupView,
)


def instance(
    iid: str, az: str = "us-east-1a", *, outdated: bool = True, state: str = "InService"
) -> InstanceView:
    return InstanceView(iid, az, state, outdated)


def node_for(inst: InstanceView, **over: Any) -> NodeView:
    return NodeView(
        **{
            "name": f"node-{inst.instance_id}",
            "instance_id": inst.instance_id,
            "az": inst.az,
            "ready": True,
            **over,
        }
    )


def pod(
    name: str,
    node: str,
    *,
    ns: str = "default",
    owner: tuple[str, str] | None = ("Deployment", "web"),
    labels: dict[str, str] | None = None,
    **over: Any,
) -> PodView:
    ref = OwnerRef(owner[0], ns, owner[1]) if owner else None
    return PodView(
        **{
            "namespace": ns,
            "name": name,
            "node": node,
            "owner": ref,
            "labels": labels or {"app": owner[1] if owner else name},
            **over,
        }
    )


def pdb(
    name: str,
    *,
    ns: str = "default",
    app: str | None = None,
    allowed: int = 1,
    healthy: int = 3,
    desired: int = 2,
    expected: int = 3,
) -> PdbView:
    return PdbView(ns, name, {"matchLabels": {"app": app or name}}, allowed, healthy, desired, expected)


def snapshot(
    instances: list[InstanceView],
    *,
    pods: list[PodView] = (),
    pdbs: list[PdbView] = (),
    desired: int | None = None,
    max_size: int = 20,
    nodes: list[NodeView] | None = None,
    autoscaler: bool = True,
) -> ClusterSnapshot:  # type: ignore[assignment]
    asg = AsgView(
        "ng", desired if desired is not None else len(instances), 0, max_size, tuple(instances), "2"
    )
    return ClusterSnapshot(
        asg,
        tuple(nodes if nodes is not None else [node_for(i) for i in instances]),
        tuple(pods),
        tuple(pdbs),
        autoscaler,
    )


def sentinel_group(
    *pdbs: PdbView, problems: tuple[str, ...] = (), masters: tuple[str, ...] = ("redis/redis-master-0",)
) -> ClusterSnapshot:
    """A Sentinel group's master and replica on two old nodes in one zone (labels app=<StatefulSet>),
    a web pod on a third node in another zone."""
    insts = [instance("i-m", "us-east-1a"), instance("i-r", "us-east-1a"), instance("i-x", "us-east-1b")]
    pods = [
        pod(
            "redis-master-0",
            "node-i-m",
            ns="redis",
            owner=("StatefulSet", "redis-master"),
            redis_group="redis/redis",
        ),
        pod(
            "redis-replica-0",
            "node-i-r",
            ns="redis",
            owner=("StatefulSet", "redis-replica"),
            redis_group="redis/redis",
        ),
        pod("web-1", "node-i-x"),
    ]
    snap = snapshot(insts, pods=pods, pdbs=list(pdbs))
    group = RedisGroupView("redis/redis", "sentinel", problems, masters)
    return ClusterSnapshot(snap.asg, snap.nodes, snap.pods, snap.pdbs, snap.autoscaler_found, (group,))
