"""Gather the planner's snapshot from the ASG and the cluster."""

from __future__ import annotations

from collections.abc import Callable

from ..aws.asg import AsgOps, AsgState
from ..k8s import KubeOps
from ..planning import AsgView, ClusterSnapshot, InstanceView, PodView, Policy, RedisGroupView
from ..settings import Settings


def asg_view(state: AsgState) -> AsgView:
    return AsgView(
        name=state.name,
        desired=state.desired,
        min_size=state.min_size,
        max_size=state.max_size,
        target_version=state.target_version,
        instances=tuple(
            InstanceView(i.instance_id, i.az, i.lifecycle_state, AsgOps.is_outdated(i, state))
            for i in state.instances
        ),
    )


def gather(
    state: AsgState,
    kube: KubeOps,
    settings: Settings,
    redis_views: Callable[[set[str]], tuple[RedisGroupView, ...]] | None = None,
) -> ClusterSnapshot:
    view = asg_view(state)
    nodes = kube.list_nodes()
    node_views = tuple(kube.node_view(n) for n in nodes)
    old_ids = {i.instance_id for i in view.instances if i.outdated}
    pods: list[PodView] = []
    for nv in node_views:
        if nv.instance_id in old_ids:
            pods.extend(kube.pod_view(p) for p in kube.pods_on_node(nv.name))
    found = (
        kube.deployment_replicas(settings.autoscaler_namespace, settings.autoscaler_deployment) is not None
    )
    # Managed Redis groups with a pod on an old node are checked live by their procedure.
    refs = {p.redis_group for p in pods if p.redis_group}
    redis_groups = redis_views(refs) if redis_views is not None and refs else ()
    return ClusterSnapshot(
        asg=view,
        nodes=node_views,
        pods=tuple(pods),
        pdbs=tuple(kube.list_pdbs()),
        autoscaler_found=found,
        redis_groups=redis_groups,
    )


def policy(settings: Settings) -> Policy:
    return Policy(
        batch_size=settings.batch_size,
        taint_key=settings.taint_key,
        raise_max_size=settings.raise_max_size,
        delete_emptydir_data=settings.delete_emptydir_data,
        redis_supported=settings.redis_enabled,
    )
