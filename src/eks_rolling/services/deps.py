"""The adapters a step needs, built lazily from `Settings` (read when the step runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from ..aws.asg import AsgOps
from ..aws.clients import aws_client
from ..aws.eks_auth import kube_connection
from ..aws.lock import AsgLock
from ..aws.notify import Notifier, notifier
from ..k8s import KubeOps, kube_ops
from ..settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    settings: Settings
    now: Callable[[], datetime] = utcnow
    _kube: dict[str, KubeOps] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Deps:
        return cls(Settings())

    @cached_property
    def asg(self) -> AsgOps:
        return AsgOps(aws_client("autoscaling", self.settings), aws_client("ec2", self.settings))

    @cached_property
    def notifier(self) -> Notifier:
        return notifier(self.settings)

    @cached_property
    def lock(self) -> AsgLock:
        return AsgLock(aws_client("dynamodb", self.settings), self.settings.lock_table)

    def kube(self, cluster_name: str) -> KubeOps:
        if cluster_name not in self._kube:
            conn = kube_connection(
                self.settings,
                cluster_name,
                eks_client=aws_client("eks", self.settings),
                sts_client=aws_client("sts", self.settings),
            )
            self._kube[cluster_name] = kube_ops(self.settings, conn)
        return self._kube[cluster_name]
