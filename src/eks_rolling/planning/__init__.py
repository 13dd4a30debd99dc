"""Pure planning: a snapshot of the cluster and ASG in, a plan out. No I/O, no clock reads."""

from .plan import build_plan
from .snapshot import (
    AsgView,
    ClusterSnapshot,
    InstanceView,
    NodeView,
    OwnerRef,
    PdbView,
    PodView,
    Policy,
    RedisGroupView,
    Scope,
    Taint,
    Toleration,
)

__all__ = [
    "AsgView",
    "ClusterSnapshot",
    "InstanceView",
    "NodeView",
    "OwnerRef",
    "PdbView",
    "PodView",
    "Policy",
    "RedisGroupView",
    "Scope",
    "Taint",
    "Toleration",
    "build_plan",
]
