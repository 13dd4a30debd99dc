"""Builders with overrides for planner inputs (Karpenter's test.Pod(PodOptions{...}) idea)."""

from __future__ import annotations

from typing import Any

from eks_rolling.planning import AsgView, ClusterSnapshot, InstanceView, NodeView, OwnerRef, PdbView, PodView


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
