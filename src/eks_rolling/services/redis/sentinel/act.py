"""The Sentinel procedure's executor: the only code that writes to Redis, Sentinel or Kubernetes.
Each action is safe to run again (a round that dies mid-way is decided afresh next round)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ....errors import RedisSwitchoverError
from ....redis.connection import RedisError
from ....redis.sentinel import SwitchoverFailed, switchover
from ..procedure import Evict, Outcome, RedisEnv, run_actions
from .model import (
    Action,
    Demote,
    Follow,
    PauseWrites,
    RecordPriority,
    Reset,
    RestorePriority,
    SetPriority,
    Switchover,
    Unpause,
)
from .survey import PRIORITY_ANNOTATION, LiveProbe, Pod, Survey


@dataclass
class SentinelOutcome(Outcome):
    switchovers: list[dict[str, Any]] = field(default_factory=list)  # what each switchover measured
    unpaused: int = 0


@dataclass
class Executor:
    env: RedisEnv
    survey: Survey
    probe: LiveProbe
    ref: str  # what errors name: the move (or the group, at cleanup)

    def pod(self, name: str) -> Pod:
        pod = self.survey.pod(name)
        if pod is None:
            raise LookupError(f"pod {name} is gone")
        return pod

    def addr(self, name: str) -> tuple[str, int]:
        pod = self.pod(name)
        return (pod.ip or "", pod.port)

    def run(self, actions: tuple[Action, ...] | list[Action]) -> SentinelOutcome:
        return run_actions(actions, self._one, SentinelOutcome())

    def _one(self, a: Action, out: SentinelOutcome) -> None:
        env, probe = self.env, self.probe
        if isinstance(a, SetPriority):
            probe.data(self.pod(a.pod)).set_priority(a.priority)
        elif isinstance(a, RecordPriority):
            env.kube.annotate_pod(env.group.namespace, a.pod, {PRIORITY_ANNOTATION: str(a.original)})
        elif isinstance(a, RestorePriority):
            out.notes += self.restore_priority(self.pod(a.pod))
        elif isinstance(a, Evict):
            out.blocked = env.evict(a.pod, a.uid)
        elif isinstance(a, PauseWrites):
            probe.data(self.pod(a.pod)).pause_writes(env.settings.redis_pause_ms)
        elif isinstance(a, Demote):
            probe.data(self.pod(a.pod)).demote_and_unpause(self.addr(a.to))
        elif isinstance(a, Follow):
            probe.data(self.pod(a.pod)).follow(self.addr(a.to))
        elif isinstance(a, Unpause):
            pod = self.pod(a.pod)
            try:
                probe.data(pod).unpause()
                out.unpaused += 1
            except (RedisError, OSError) as exc:
                out.notes.append(f"Redis group {env.group.ref}: could not unpause {pod.name}: {exc}")
        elif isinstance(a, Reset):
            probe.sentinel(self.pod(a.sentinel)).reset()
        else:
            self.switchover(a, out)

    def switchover(self, a: Switchover, out: SentinelOutcome) -> None:
        old, new = self.pod(a.old), self.pod(a.new)
        self.env.sleep(a.delay_ms / 1000)
        sentinels = [self.probe.sentinel(p) for p in self.survey.sentinel_pods if p.up]
        sentinels = [sentinels[a.leader], *sentinels[: a.leader], *sentinels[a.leader + 1 :]]
        try:
            rep = switchover(
                self.probe.data(old),
                self.probe.data(new),
                sentinels,
                pause_ms=self.env.settings.redis_pause_ms,
            )
        except SwitchoverFailed as exc:
            notes = self.restore_priority(new)
            where = (
                f"{exc.promoted[0]} was promoted, {old.name} demoted"
                if exc.promoted
                else f"{old.name} is still the master"
            )
            raise RedisSwitchoverError(
                f"{self.ref}: switchover {old.name} -> {new.name} failed: {exc}; {where}; writes released; {'; '.join(notes)}"
            ) from exc
        out.switchovers.append(
            {
                "from": old.name,
                "to": new.name,
                "paused_at": round(rep.paused_at, 3),
                "paused_ms": rep.unpaused_ms,
                "promoted_ms": rep.promoted_ms,
            }
        )
        out.notes.append(
            f"switchover {old.label()} -> {new.label()}: CLIENT PAUSE WRITE on {old.name}, caught up in "
            f"{rep.catchup_ms:.0f} ms, SENTINEL FAILOVER via {sentinels[0]}{' (timed to its INFO cycle)' if a.aligned else ''}, "
            f"promoted after {rep.promoted_ms:.0f} ms, "
            f"{'all sentinels agreed, ' if rep.agreed else ''}REPLICAOF + UNPAUSE on {old.name}: writes held {rep.unpaused_ms:.0f} ms"
        )

    def restore_priority(self, pod: Pod) -> list[str]:
        """Put back the replica-priority recorded on `pod`, then drop the record."""
        original = pod.annotations.get(PRIORITY_ANNOTATION)
        if original is None:
            return []
        if not original.strip().isdigit():
            return [
                f"{PRIORITY_ANNOTATION}={original!r} on {pod.name} is not an integer: replica-priority left as is"
            ]
        try:
            if pod.up:
                self.probe.data(pod).set_priority(int(original))
        except (RedisError, OSError) as exc:
            return [f"could not restore replica-priority {original} on {pod.name}: {exc}"]
        self.env.kube.annotate_pod(self.env.group.namespace, pod.name, {PRIORITY_ANNOTATION: None})
        return [f"replica-priority of {pod.name} restored to {original}"]
