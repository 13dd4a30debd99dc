"""The typed state of a Redis Cluster move, as kept in RedisMove.data (the JSON keys the phases
write) and the actions its decisions ask the executor to take. Each round validates the stored
state against it, so a key misspelt or of the wrong type is a clear error at the start of a
round, not a KeyError half-way through a phase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..procedure import Evict, MoveState

Phase = Literal[
    "start",
    "restart",
    "temp_start",
    "temp_join",
    "temp_sync",
    "failover_to_temp",
    "a_restart",
    "failover_to_a",
    "temp_remove",
    "done",
]
Kind = Literal["master", "replica", "empty-master", "unknown"]


class ClusterMoveState(MoveState):
    # A new phase counts its refused evictions and announced roles afresh.
    FRESH: ClassVar[tuple[str, ...]] = ("throttled", "announced", "waiting")

    # the pod at discovery
    uid: str
    node: str | None = None
    ip: str | None = None
    # what start found
    kind: Kind | None = None
    node_id: str | None = None
    slots: list[list[int]] | None = None  # A's slot ranges (master path)
    zone: str | None = None
    started: str | None = None  # ISO time the move started
    # the temporary node T
    temp: str | None = None
    temp_id: str | None = None
    temp_ip: str | None = None
    temp_node: str | None = None
    # the failovers
    failover_at: float | None = None  # epoch seconds the last CLUSTER FAILOVER was sent
    failover_tries: int | None = None
    # A back on a new node
    new_ip: str | None = None
    new_node: str | None = None
    # measured
    failover_to_temp_s: float | None = None
    failback_s: float | None = None
    total_s: float | None = None
    # bookkeeping of the current phase
    announced: list[str] | None = None  # nodes whose role was announced (once per phase)
    waiting: str | None = None
    throttled: int | None = None  # consecutive refused evictions


# --- actions: the only writes, each safe to run again ------------------------------------------
@dataclass(frozen=True)
class CreateTemp:
    """Create the temporary pod from the StatefulSet's template, unless this run's is there."""

    pod: str  # A
    statefulset: str
    temp: str
    node_id: str
    slots: tuple[tuple[int, int], ...]
    zone: str


@dataclass(frozen=True)
class Configure:
    """CONFIG SET on one node."""

    pod: str
    name: str
    value: str


@dataclass(frozen=True)
class Meet:
    """CLUSTER MEET ip port, sent from `pod`."""

    pod: str
    ip: str
    port: int


@dataclass(frozen=True)
class Announce:
    """A MEET from `pod` to each of `among`: its role reaches them in the packet header at once
    (gossip would take up to node-timeout/2)."""

    pod: str
    among: tuple[str, ...]
    quiet: bool = False  # cleanup: a node that does not answer is skipped, not an error


@dataclass(frozen=True)
class Replicate:
    """CLUSTER REPLICATE `master_id` on `pod`, unless it follows it already."""

    pod: str
    master_id: str


@dataclass(frozen=True)
class Failover:
    """A default (never FORCE nor TAKEOVER) CLUSTER FAILOVER on `pod`, unless it is master."""

    pod: str


@dataclass(frozen=True)
class Forget:
    """CLUSTER FORGET `node_id` on each of `on`, back to back: the 60 s ban (Redis 7.0) must start
    everywhere before any node could gossip it back."""

    on: tuple[str, ...]
    node_id: str


@dataclass(frozen=True)
class DeleteTemp:
    """Delete the temporary pod (ours: no PDB covers it, so no eviction)."""

    temp: str


Action = Evict | CreateTemp | Configure | Meet | Announce | Replicate | Failover | Forget | DeleteTemp
