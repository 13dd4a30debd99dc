"""What a Redis procedure is given and gives back, shared by both kinds (Sentinel and Cluster):
the environment of one group, the vocabulary of a round (a pure decision is Wait, Act or Abort;
the procedure turns it into an Advance of the move), and the group's health at plan time. A
leaf: the procedures import it, it imports neither of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from ...errors import DrainTimeoutError, PermanentError, RedisMoveTimeoutError
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

    def monotonic(self) -> float:
        return self.deps.monotonic()

    def sleep(self, seconds: float) -> None:
        self.deps.sleep(seconds)

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


class MoveState(BaseModel):
    """A procedure's typed state of one move, kept in RedisMove.data (a None field is absent
    from the stored JSON). Each round validates the stored state: a key misspelt or of the wrong
    type is a clear error at the start of a round, not a KeyError half-way through a phase."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # What the next phase starts again from scratch (the last wait's reason, at least).
    FRESH: ClassVar[tuple[str, ...]] = ("waiting",)

    @classmethod
    def of(cls, move: RedisMove) -> Self:
        return cls.model_validate(move.data)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def go(self, **update: Any) -> Self:
        """The state of the next step: what it starts afresh dropped, `update` applied."""
        return self.model_copy(update={**dict.fromkeys(self.FRESH), **update})


@dataclass(frozen=True)
class Evict:
    """Evict one of the group's pods through the Eviction API (a PDB may refuse: the round then
    waits as the drain does)."""

    pod: str
    uid: str


S = TypeVar("S")  # a procedure's typed move state
A = TypeVar("A")  # a procedure's actions


@dataclass(frozen=True)
class Wait(Generic[S, A]):
    """Not yet: poll again in `wait_s`. Past the phase's deadline the round raises `error`
    instead, unless the wait is not `timed` (a planned pause, such as timing a command to a
    sentinel's INFO cycle). `actions` run first (holding writes while sentinels settle)."""

    reason: str
    wait_s: int
    state: S | None = None  # the move's state to keep; None: unchanged
    actions: tuple[A, ...] = ()
    notes: tuple[str, ...] = ()
    error: type[PermanentError] = RedisMoveTimeoutError
    timed: bool = True
    restart_clock: bool = False  # a step of the phase completed: its deadline starts again


@dataclass(frozen=True)
class Act(Generic[S, A]):
    """Run `actions` (in order), then go to `phase` ("done": the move is over)."""

    phase: str
    actions: tuple[A, ...] = ()
    notes: tuple[str, ...] = ()
    state: S | None = None
    wait_s: int = 0


@dataclass(frozen=True)
class Abort(Generic[A]):
    """Stop the move with `error` after running `actions` (leave the group safe first)."""

    error: PermanentError
    actions: tuple[A, ...] = ()


Decision = Wait[S, A] | Act[S, A] | Abort[A]


def refused(reason: str, wait_s: int) -> Wait[Any, Any]:
    """A PDB refused the eviction: wait as the drain does, and time out as the drain does."""
    return Wait(reason, wait_s, error=DrainTimeoutError)


@dataclass
class Outcome:
    """What an executor's run did, for the procedure to record."""

    notes: list[str] = field(default_factory=list)
    blocked: str | None = None  # a PDB refused the eviction: what blocks it; nothing ran after


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


def run_actions(
    actions: tuple[A, ...] | list[A], one: Callable[[A, OutcomeT], None], out: OutcomeT
) -> OutcomeT:
    """Run `actions` in order with an executor's `one`, up to a refused eviction."""
    for a in actions:
        one(a, out)
        if out.blocked is not None:
            break
    return out


Settle = Callable[[RedisMove, "RedisEnv", Wait[S, A], list[str]], "Advance"]


def carry_out(
    move: RedisMove,
    env: RedisEnv,
    decision: Decision[S, A],
    run: Callable[[tuple[A, ...]], OutcomeT],
    settle: Settle[S, A],
) -> Advance | tuple[Act[S, A], OutcomeT]:
    """Run what `decision` asks. An Abort raises its error after its actions (which leave the
    group safe first); an eviction a PDB refused (counted, with the drain's backoff; an Act's or
    a Wait's) or a Wait settles into the move's Advance here; an Act comes back with what its
    actions did, for the procedure to take the move to its next phase."""
    out = run(decision.actions)
    if isinstance(decision, Abort):
        raise decision.error
    if out.blocked is not None:
        throttled, wait_s = env.refused(move)
        return settle(throttled, env, refused(out.blocked, wait_s), [])
    if isinstance(decision, Wait):
        return settle(move, env, decision, [*decision.notes, *out.notes])
    return decision, out


def timed_out(move: RedisMove, now: datetime) -> bool:
    """Has the current phase of `move` run past its deadline? (None: its clock has not started.)"""
    return move.phase_deadline is not None and now > move.phase_deadline


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
