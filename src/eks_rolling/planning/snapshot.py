"""Frozen views of what the planner needs; adapters build them from API objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..labels import TAINT_RETIRING
from .resources import Resources


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if not self.key:
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or self.value == taint.value


@dataclass(frozen=True)
class OwnerRef:
    """The top-level controller of a pod: ReplicaSets are resolved to their Deployment."""

    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    node: str
    owner: OwnerRef | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    phase: str = "Running"
    terminating: bool = False
    mirror: bool = False
    has_emptydir: bool = False
    tolerations: tuple[Toleration, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    redis_group: str | None = None  # namespace/name of the managed Redis group the pod belongs to
    requests: Resources = field(default_factory=Resources)  # what the scheduler fits it by
    zone: str | None = None  # the zone its volumes pin it to (an EBS volume stays in its zone)
    do_not_disrupt: bool = False  # annotated do-not-disrupt (ours or Karpenter's): never evicted
    disrupt_deadline: str | None = None  # its do-not-disrupt-deadline annotation, as written

    @property
    def daemonset(self) -> bool:
        return self.owner is not None and self.owner.kind == "DaemonSet"

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def evictable(self) -> bool:
        """kubectl drain's filters: DaemonSet and mirror pods stay, finished pods don't matter."""
        return not (self.daemonset or self.mirror or self.finished)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PdbView:
    namespace: str
    name: str
    selector: Mapping[str, Any] | None  # object form; None matches nothing, {} everything
    disruptions_allowed: int
    current_healthy: int
    desired_healthy: int
    expected_pods: int

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class InstanceView:
    instance_id: str
    az: str
    lifecycle_state: str
    outdated: bool


@dataclass(frozen=True)
class NodeView:
    name: str
    instance_id: str | None
    az: str | None
    ready: bool
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    instance_type: str | None = None
    allocatable: Resources | None = None
    max_pods: int = 110
    used: Resources = field(default_factory=Resources)  # requests of its unfinished pods (up-to-date nodes)
    pod_count: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AsgView:
    name: str
    desired: int
    min_size: int
    max_size: int
    instances: tuple[InstanceView, ...]
    target_version: str | None = None
    target_instance_type: str | None = None  # what new instances launch as (launch template)
    availability_zones: tuple[str, ...] = ()  # in the group's order: the ASG's tie-break


@dataclass(frozen=True)
class Policy:
    batch_size: int = 1
    taint_key: str = TAINT_RETIRING
    raise_max_size: bool = True
    delete_emptydir_data: bool = False
    redis_supported: bool = False  # until the Redis steps land, Redis pods block the plan
    scope: Scope = field(default_factory=lambda: Scope())
    az_sequential: bool = False  # batches finish one zone before the next starts
    do_not_disrupt_timeout_s: int = 3600
    do_not_disrupt_on_deadline: str = "fail"  # or "evict"
    poll_interval_s: int = 10
    do_not_disrupt_poll_cap_s: int = 300

    wave_history_events: int = 10_000  # expected events per child execution (planning.waves)
    max_nodes_per_wave: int = 0  # 0: as many as the wave's history budget allows
    # 1 with maintenance windows: CheckGate runs between waves, so then no batch starts outside one
    max_batches_per_wave: int = 0
    hook_steps: int = 0  # hook Task states each node runs (PreDrainHooks, PostReplaceHooks): 0-2
    canary_per_az: int = 0  # old nodes per zone in the first wave (0: no canary wave)
    bake_rounds: int = 0  # CheckGate rounds of the health gate after each wave (0: no alarms)
    wave_concurrency: int = 1  # waves at once when capacity and safety allow (planning.together)


@dataclass(frozen=True)
class Scope:
    """Which old nodes a roll may touch. Selectors are in object form (selectors.parse_selector);
    None means no limit. `source` says where each came from, for the plan's reasons."""

    node_selector: Mapping[str, Any] | None = None
    instance_ids: frozenset[str] = frozenset()
    exclude_selector: Mapping[str, Any] | None = None
    source: Mapping[str, str] = field(default_factory=dict)  # field -> "setting" | "tag" | "input"


@dataclass(frozen=True)
class RedisGroupView:
    """A managed Redis group as seen at plan time (health checked live by its procedure)."""

    ref: str  # namespace/name
    kind: str
    problems: tuple[str, ...] = ()
    master_pods: tuple[str, ...] = ()  # namespace/pod of the pods that hold a master role now


@dataclass(frozen=True)
class ClusterSnapshot:
    asg: AsgView
    nodes: tuple[NodeView, ...]
    pods: tuple[PodView, ...]
    pdbs: tuple[PdbView, ...]
    autoscaler_found: bool = True
    redis_groups: tuple[RedisGroupView, ...] = ()
    taken_at: datetime | None = None  # an absolute do-not-disrupt deadline is budgeted from here
