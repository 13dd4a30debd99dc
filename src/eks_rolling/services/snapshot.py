"""Gather the planner's snapshot from the ASG and the cluster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..aws.asg import AsgOps, AsgState
from ..errors import InvalidInputError
from ..k8s import KubeOps
from ..k8s.ops import pod_requests
from ..labels import (
    TAG_AZ_SEQUENTIAL,
    TAG_CANARY_PER_AZ,
    TAG_EXCLUDE_SELECTOR,
    TAG_INSTANCE_IDS,
    TAG_NODE_SELECTOR,
)
from ..models import NodeTarget, RollScope
from ..planning import (
    AsgView,
    ClusterSnapshot,
    InstanceView,
    NodeView,
    PodView,
    Policy,
    RedisGroupView,
    Scope,
)
from ..planning.resources import Resources
from ..planning.selectors import SelectorError, parse_selector
from ..settings import Settings


def asg_view(state: AsgState) -> AsgView:
    return AsgView(
        name=state.name,
        desired=state.desired,
        min_size=state.min_size,
        max_size=state.max_size,
        target_version=state.target_version,
        target_instance_type=state.target_instance_type,
        availability_zones=state.availability_zones,
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
    now: datetime | None = None,
) -> ClusterSnapshot:
    view = asg_view(state)
    node_views = kube.list_nodes()
    old_ids = {i.instance_id for i in view.instances if i.outdated}
    new_ids = {i.instance_id for i in view.instances if not i.outdated}
    pods: list[PodView] = []
    for k, nv in enumerate(node_views):
        if nv.instance_id in old_ids:
            pods.extend(kube.pod_view(p, nv.az) for p in kube.pods_on_node(nv.name))
        elif nv.instance_id in new_ids:
            node_views[k] = _with_usage(nv, kube.pods_on_node(nv.name))
    found = (
        kube.deployment_replicas(settings.autoscaler_namespace, settings.autoscaler_deployment) is not None
    )
    # Managed Redis groups with a pod on an old node are checked live by their procedure.
    refs = {p.redis_group for p in pods if p.redis_group}
    redis_groups = redis_views(refs) if redis_views is not None and refs else ()
    return ClusterSnapshot(
        asg=view,
        nodes=tuple(node_views),
        pods=tuple(pods),
        pdbs=tuple(kube.list_pdbs()),
        autoscaler_found=found,
        redis_groups=redis_groups,
        taken_at=now,
    )


def gather_batch(state: AsgState, kube: KubeOps, batch: list[NodeTarget]) -> ClusterSnapshot:
    """The live view SurgeCapacity sizes a surge with: the batch's old nodes with their pods,
    and the group's up-to-date nodes with the room they have left."""
    view = asg_view(state)
    names = {t.node_name for t in batch if t.node_name}
    new_ids = {i.instance_id for i in view.instances if not i.outdated}
    nodes: list[NodeView] = []
    pods: list[PodView] = []
    for nv in kube.list_nodes():
        if nv.name in names:
            pods.extend(kube.pod_view(p, nv.az) for p in kube.pods_on_node(nv.name))
        elif nv.instance_id in new_ids:
            nv = _with_usage(nv, kube.pods_on_node(nv.name))
        nodes.append(nv)
    return ClusterSnapshot(asg=view, nodes=tuple(nodes), pods=tuple(pods), pdbs=())


def _with_usage(node: NodeView, pods: list[Any]) -> NodeView:
    """An up-to-date node's room in use: requests of its pods that have not finished (the
    capacity plan counts what is left for the pods it will move there)."""
    live = [p for p in pods if (p.status.phase or "Pending") not in ("Succeeded", "Failed")]
    used = sum((pod_requests(p) for p in live), Resources())
    return replace(node, used=used, pod_count=len(live))


def policy(
    settings: Settings, tags: Mapping[str, str] | None = None, start: RollScope | None = None
) -> Policy:
    """The planner's policy: settings, with the ASG's own scope and sequencing tags winning, and
    a manual start's scope over both. A tag that does not parse is InvalidInputError naming it
    (raised before anything changes)."""
    tags = tags or {}
    s = settings
    return Policy(
        batch_size=s.batch_size,
        taint_key=s.taint_key,
        raise_max_size=s.raise_max_size,
        delete_emptydir_data=s.delete_emptydir_data,
        redis_supported=s.redis_enabled,
        scope=scope_of(s, tags, start),
        az_sequential=tags[TAG_AZ_SEQUENTIAL].strip().lower() == "true"
        if TAG_AZ_SEQUENTIAL in tags
        else s.az_sequential,
        do_not_disrupt_timeout_s=s.do_not_disrupt_timeout_s,
        do_not_disrupt_on_deadline=s.do_not_disrupt_on_deadline,
        poll_interval_s=s.poll_interval_s,
        do_not_disrupt_poll_cap_s=s.do_not_disrupt_poll_cap_s,
        max_nodes_per_wave=s.max_nodes_per_wave,
        wave_concurrency=s.wave_concurrency,
    )


def canary_per_az(settings: Settings, tags: Mapping[str, str]) -> int:
    """The canary's old nodes per zone: the ASG's tag wins over the setting."""
    text = tags.get(TAG_CANARY_PER_AZ, "").strip()
    if not text:
        return settings.canary_per_az
    if not text.isdigit() or int(text) > 50:
        raise InvalidInputError(f"tag {TAG_CANARY_PER_AZ} is {text!r}: expected a whole number 0-50")
    return int(text)


def scope_of(settings: Settings, tags: Mapping[str, str], start: RollScope | None = None) -> Scope:
    source: dict[str, str] = {}
    given = start.model_dump() if start else {}

    def pick(field: str, tag: str, setting: str) -> str:
        if given.get(field):
            source[field] = "start input"
            value = given[field]
            return " ".join(value) if isinstance(value, list) else str(value)
        if tags.get(tag, "").strip():
            source[field] = f"tag {tag}"
            return tags[tag]
        source[field] = "setting"
        return setting

    def selector(field: str, tag: str, setting: str) -> Mapping[str, Any] | None:
        text = pick(field, tag, setting)
        if not text.strip():
            return None
        try:
            return parse_selector(text)
        except SelectorError as exc:
            raise InvalidInputError(f"bad label selector in {source[field]}: {exc}") from None

    ids = pick("instance_ids", TAG_INSTANCE_IDS, " ".join(settings.instance_ids))
    return Scope(
        node_selector=selector("node_selector", TAG_NODE_SELECTOR, settings.node_selector),
        instance_ids=frozenset(i for i in ids.replace(",", " ").split() if i),
        exclude_selector=selector("exclude_selector", TAG_EXCLUDE_SELECTOR, settings.exclude_selector),
        source=source,
    )
