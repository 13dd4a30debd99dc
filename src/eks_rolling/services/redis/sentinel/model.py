"""The typed state of a Sentinel move (kept in RedisMove.data, same JSON keys as before) and the
actions its decisions ask the executor to take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..procedure import Evict, MoveState

Phase = Literal[
    "start",
    "steer",
    "switchover",
    "confirm",
    "move",
    "rejoin",
    "steer-back",
    "switchover-back",
    "confirm-back",
    "reset",
    "done",
]
Flow = Literal["replica", "master", "sentinel"]
# What a finished move keeps no more.
TRANSIENT = ("waiting", "reset_todo", "reset_sent", "reset_at")


class SentinelMoveState(MoveState):
    uid: str | None = None
    node: str | None = None
    ip: str | None = None
    flow: Flow | None = None
    target: str | None = None  # the switchover target of a master's move
    throttled: int | None = None  # consecutive refused evictions
    waiting: str | None = None  # why the last round waited
    reset_todo: list[str] | None = None  # sentinels whose stale entries are still to clear
    reset_sent: str | None = None  # the sentinel reset last, until it converges
    reset_at: float | None = None
    align_since: float | None = None  # when the switchover started timing itself to an INFO
    switchovers: list[dict[str, Any]] | None = None  # what each switchover measured


# --- actions: the only writes, each safe to run again ------------------------------------------
@dataclass(frozen=True)
class SetPriority:
    pod: str
    priority: int


@dataclass(frozen=True)
class RecordPriority:
    """Annotate the pod with its original replica-priority before changing it (for Rollback)."""

    pod: str
    original: int


@dataclass(frozen=True)
class RestorePriority:
    """Put back the replica-priority recorded on the pod, then drop the record."""

    pod: str


@dataclass(frozen=True)
class PauseWrites:
    pod: str


@dataclass(frozen=True)
class Demote:
    """REPLICAOF `to` and CLIENT UNPAUSE on a second master."""

    pod: str
    to: str


@dataclass(frozen=True)
class Follow:
    pod: str
    to: str


@dataclass(frozen=True)
class Unpause:
    pod: str


@dataclass(frozen=True)
class Reset:
    """SENTINEL RESET on one sentinel."""

    sentinel: str


@dataclass(frozen=True)
class Switchover:
    """The zero-loss switchover `old` -> `new`, SENTINEL FAILOVER sent to the `leader`-th
    sentinel after `delay_ms` (timed to its INFO of `new`)."""

    old: str
    new: str
    leader: int
    delay_ms: int
    aligned: bool


Action = (
    SetPriority
    | RecordPriority
    | RestorePriority
    | Evict
    | PauseWrites
    | Demote
    | Follow
    | Unpause
    | Reset
    | Switchover
)
