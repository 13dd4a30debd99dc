"""What a Redis procedure is given and gives back, shared by both kinds (Sentinel and Cluster):
the environment of one group, the result of advancing one move by one phase, and the group's
health at plan time. A leaf: the procedures import it, it imports neither of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ...k8s import KubeOps
from ...labels import REDIS_PORT
from ...models import RedisMove, RollContext
from ...redis.connection import RedisAuth, connect
from ...redis.discovery import RedisGroup
from ...settings import Settings
from ..deps import Deps
from ..drain import backoff_s


@dataclass
class RedisEnv:
    """What a procedure works with: the group, its credentials, the cluster, the clock."""

    ctx: RollContext
    deps: Deps
    kube: KubeOps
    group: RedisGroup
    auth: RedisAuth
    now: datetime
    settings: Settings

    def client(self, host: str, port: int = REDIS_PORT) -> Any:
        return connect(host, port, self.auth, timeout_s=self.settings.redis_socket_timeout_s)

    def deadline(self, seconds: int | None = None) -> datetime:
        return self.now + timedelta(seconds=seconds or self.settings.redis_phase_timeout_s)

    def evict(self, name: str, uid: str) -> str | None:
        """Move one of the group's pods through the Eviction API, so that the user's
        PodDisruptionBudgets hold for Redis pods as for any pod. None once evicted (or already
        replaced); else what blocks it now (a 429: wait and try again, within the phase)."""
        pod = self.kube.get_pod(self.group.namespace, name)
        if pod is None or pod.metadata.uid != uid or pod.metadata.deletion_timestamp is not None:
            return None
        out = self.kube.evict(pod, uid=uid)
        return out.detail if out.status == "blocked" else None

    def refused(self, move: RedisMove) -> tuple[RedisMove, int]:
        """A PDB refused `move`'s eviction again: count it and back off as the drain does
        (exponential, with jitter), so that a long refusal costs few rounds of history."""
        n = int(move.data.get("throttled", 0)) + 1
        return move.model_copy(update={"data": {**move.data, "throttled": n}}), backoff_s(n, self.settings)


@dataclass
class Advance:
    move: RedisMove
    actions: list[str] = field(default_factory=list)
    wait_s: int = 1


@dataclass
class GroupHealth:
    problems: list[str] = field(default_factory=list)
    master_pods: list[str] = field(default_factory=list)  # pod names holding a master role now


class Procedure(Protocol):
    kind: str

    def order(self, move: RedisMove) -> int:
        """Order of this group's pods on one node (lower first)."""
        ...

    def health(self, env: RedisEnv) -> GroupHealth:
        """Plan time: is the group healthy enough to move pods safely? Read only."""
        ...

    def advance(self, move: RedisMove, env: RedisEnv) -> Advance:
        """Do or check the current phase of `move`; raise a PermanentError past its deadline."""
        ...

    def cleanup(self, env: RedisEnv) -> list[str]:
        """After success or failure: lift pauses, restore priorities, remove temporary nodes."""
        ...
