"""Redis under Sentinel: moving replicas, the master (a zero-loss switchover and back) and the
sentinels off old nodes. Each MoveRedisPods round does or checks one phase of one pod; what it
did is returned as actions (the execution history is the audit trail).

    replica   start -> move -> rejoin -> [reset] -> done
    master    start -> steer -> switchover -> confirm -> move -> rejoin
                    -> steer-back -> switchover-back -> confirm-back -> [reset] -> done
    sentinel  start -> move -> rejoin -> [reset] -> done

The flow is chosen from the pod's live role, not its StatefulSet: a pod of the replica set that
holds the master role gets the master flow. Failback (`redis_failback`, default on) ends with
the master where the operator placed it. Sentinels keep a moved replica's old IP for ever
(anchors-redis 1.2); the `reset` phase clears it with SENTINEL RESET, one sentinel at a time,
each waiting for its replicas, peers and CKQUORUM. It runs once per group, after the group's
last move of the roll (no pod left on a retiring node): a stale `s_down` entry is never picked
by a failover, while every reset opens a window in which that sentinel is blind (the fewer,
the safer and faster).

Pods leave their node through the Eviction API (`move`), so a PodDisruptionBudget the user put
on a StatefulSet holds: a 429 waits, within the phase's deadline, then DrainTimeoutError names
the PDB, as for any pod.

What a crash must not lose lives outside the Map iteration: the replica-priority a switchover
changes is recorded on that pod (annotation, removed once restored), so `cleanup` (RestoreCluster
and Rollback) restores it; cleanup also unpauses every data node, demotes a second master, and
runs the `reset` a failed roll never reached, so every sentinel lists exactly the live pods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...aws.clients import aws_client
from ...aws.lock import AsgLock
from ...errors import (
    DrainTimeoutError,
    PermanentError,
    RedisGroupUnhealthyError,
    RedisMoveTimeoutError,
    RedisSwitchoverError,
)
from ...labels import REDIS_ORIGINAL_REPLICA_PRIORITY, REDIS_PORT, SENTINEL_PORT
from ...models import RedisMove
from ...redis.connection import RedisError
from ...redis.sentinel import (
    DataNode,
    Replication,
    SentinelNode,
    SentinelView,
    SwitchoverFailed,
    lag_bytes,
    switchover,
)
from .procedure import Advance, GroupHealth, RedisEnv

log = logging.getLogger(__name__)

# Local names for keys and ports of eks_rolling.labels, kept while the procedures are being split.
PRIORITY_ANNOTATION = REDIS_ORIGINAL_REPLICA_PRIORITY
STEER_PRIORITY = 1  # lowest non-zero: Sentinel prefers the lowest (0 = never promote)
SYNC_SLACK_BYTES = 64 * 1024  # "in sync" under live writes; exact equality is checked under pause
DATA_PORT = REDIS_PORT
SENTINEL_INFO_PERIOD_MS = 10_000
# Reset a sentinel when its next INFO of the master is due within ~1.5 s: the replicas it
# forgets are back at that INFO (measured 0.04-1.05 s) instead of up to 10 s later.
RESET_WINDOW_MS = 8_500
# Start SENTINEL FAILOVER when the leader's last INFO of the target is 300-550 ms old: during a
# failover it INFOs replicas every second, so its next INFO lands just after the promotion
# (0.15-0.4 s) and it sees the promotion then, not up to a second later (measured: writes
# released after 0.55-0.9 s instead of 1.0-1.1 s). Waiting for that window costs at most one
# 10 s INFO cycle (less with 3 sentinels to pick from); after ALIGN_GIVE_UP_S the switchover
# goes ahead unaligned.
ALIGN_WINDOW_MS = (300, 550)
ALIGN_SLEEP_MAX_MS = 1000
ALIGN_GIVE_UP_S = 30
WAIT_POD_S = 2  # pods coming back, replication catching up
WAIT_SENTINEL_S = 2  # sentinels noticing changes (INFO every 10 s, hello every 2 s)
# Cleanup's reset, in one invocation: per sentinel, up to one INFO period to reach its reset
# window and re-learn the replicas, plus a few hello periods (2 s) to re-learn its peers.
CLEANUP_RESET_BUDGET_S = SENTINEL_INFO_PERIOD_MS // 1000 + 3 * 2
# Cleanup first lets a pod the failed roll had just evicted come back (a restart, a resync).
CLEANUP_SETTLE_S = 30
CLEANUP_POLL_S = 0.5


# --- the group as seen in one round ------------------------------------------------------------
@dataclass(frozen=True)
class Pod:
    name: str
    role: str  # the StatefulSet's role: master, replica or sentinel
    uid: str
    ip: str | None
    port: int
    node: str | None
    ready: bool
    terminating: bool
    retiring: bool  # on a node carrying the roll's taint
    annotations: dict[str, str]

    @property
    def up(self) -> bool:
        return self.ip is not None and self.ready and not self.terminating

    def label(self) -> str:
        return f"{self.name} ({self.ip})"


class Snapshot:
    """The group's pods (Kubernetes), and their Redis and Sentinel state on demand, cached."""

    def __init__(self, env: RedisEnv) -> None:
        self.env = env
        self.pods = self._read_pods()
        self._repl: dict[str, Replication | Exception] = {}
        self._views: dict[str, SentinelView | Exception] = {}
        self._clients: dict[str, Any] = {}

    def _read_pods(self) -> dict[str, Pod]:
        kube, g, key = self.env.kube, self.env.group, self.env.settings.taint_key
        retiring: dict[str, bool] = {}
        out: dict[str, Pod] = {}
        for sts, role in sorted(g.statefulsets.items()):
            obj = kube.statefulset(g.namespace, sts)
            count = obj.spec.replicas if obj is not None and obj.spec.replicas is not None else 1
            for i in range(count):
                raw = kube.get_pod(g.namespace, f"{sts}-{i}")
                if raw is None:
                    continue
                node = raw.spec.node_name
                if node and node not in retiring:
                    n = kube.get_node(node)
                    retiring[node] = n is not None and any(t.key == key for t in n.spec.taints or [])
                ports = [p.container_port for c in raw.spec.containers or [] for p in c.ports or []]
                out[raw.metadata.name] = Pod(
                    name=raw.metadata.name,
                    role=role,
                    uid=raw.metadata.uid,
                    ip=raw.status.pod_ip,
                    port=ports[0] if ports else (SENTINEL_PORT if role == "sentinel" else DATA_PORT),
                    node=node,
                    ready=any(c.type == "Ready" and c.status == "True" for c in raw.status.conditions or []),
                    terminating=raw.metadata.deletion_timestamp is not None,
                    retiring=retiring.get(node or "", False),
                    annotations=dict(raw.metadata.annotations or {}),
                )
        return out

    @property
    def data_pods(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.role != "sentinel"]

    @property
    def sentinel_pods(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.role == "sentinel"]

    def _client(self, pod: Pod) -> Any:
        if pod.ip is None:
            raise LookupError(f"{pod.name} has no IP")
        if pod.name not in self._clients:
            self._clients[pod.name] = self.env.client(pod.ip, pod.port)
        return self._clients[pod.name]

    def data(self, pod: Pod) -> DataNode:
        return DataNode(self._client(pod), (pod.ip or "", pod.port))

    def sentinel(self, pod: Pod) -> SentinelNode:
        return SentinelNode(self._client(pod), (pod.ip or "", pod.port), self.env.group.master_set)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def sentinels(self) -> list[SentinelNode]:
        return [self.sentinel(p) for p in self.sentinel_pods if p.up]

    def replication(self, pod: Pod) -> Replication | Exception:
        if pod.name not in self._repl:
            try:
                self._repl[pod.name] = self.data(pod).replication()
            except (RedisError, OSError, LookupError) as exc:
                self._repl[pod.name] = exc
        return self._repl[pod.name]

    def view(self, pod: Pod) -> SentinelView | Exception:
        if pod.name not in self._views:
            try:
                self._views[pod.name] = self.sentinel(pod).view()
            except (RedisError, OSError, LookupError) as exc:
                self._views[pod.name] = exc
        return self._views[pod.name]

    def masters(self) -> list[Pod]:
        return [
            p for p in self.data_pods if isinstance(r := self.replication(p), Replication) and r.is_master
        ]

    def master(self) -> Pod | None:
        masters = self.masters()
        return masters[0] if len(masters) == 1 else None

    def pod(self, name: str) -> Pod | None:
        return self.pods.get(name)

    def by_ip(self, ip: str | None) -> Pod | None:
        return next((p for p in self.pods.values() if ip is not None and p.ip == ip), None)

    def live_replica_ips(self, master: Pod) -> set[str]:
        return {p.ip for p in self.data_pods if p.ip and p.name != master.name and not p.terminating}

    def live_sentinel_ips(self) -> set[str]:
        return {p.ip for p in self.sentinel_pods if p.ip and not p.terminating}

    def stale_entries(self, view: SentinelView, master: Pod) -> list[str]:
        """What a sentinel remembers that is no live pod: moved replicas' and sentinels' old IPs."""
        replicas = {r.ip for r in view.replicas} - self.live_replica_ips(master)
        peers = {ip for ip, _ in view.peers} - self.live_sentinel_ips()
        return sorted(replicas | peers)


def in_sync(replica: Pod, repl: Replication, master: Pod, mrepl: Replication) -> str | None:
    """None when `replica` fully follows `master`, else why not."""
    if repl.is_master:
        return f"{replica.name} reports role master"
    if repl.master != (master.ip, master.port):
        return f"{replica.name} replicates {repl.master}, not the master {master.label()}"
    if not repl.link_up or repl.syncing:
        return f"{replica.name}: link {'up' if repl.link_up else 'down'}, sync in progress {repl.syncing}"
    link = mrepl.link_of(replica.ip or "")
    if link is None or link.state != "online":
        return f"master {master.name} does not list {replica.label()} online"
    lag = lag_bytes(mrepl, repl)
    if lag > SYNC_SLACK_BYTES or link.lag > 1:
        return f"{replica.name} is {lag} bytes / {link.lag}s behind the master"
    return None


# --- the procedure ------------------------------------------------------------------------------
Step = Callable[["SentinelProcedure", RedisMove, RedisEnv, Snapshot], Advance]


class SentinelProcedure:
    kind = "sentinel"

    def order(self, move: RedisMove) -> int:
        # On one node: replicas first, then sentinels, the master last (its switchover then sees
        # a settled group).
        return {"replica": 0, "sentinel": 1, "master": 2}.get(move.role, 1)

    # --- plan time ------------------------------------------------------------------------------
    def health(self, env: RedisEnv) -> GroupHealth:
        snap = Snapshot(env)
        try:
            return self._health(snap)
        finally:
            snap.close()

    def _health(self, snap: Snapshot) -> GroupHealth:
        problems: list[str] = annotation_problems(snap.env.group.namespace, snap.pods.values())
        for p in snap.pods.values():
            if not p.up:
                problems.append(f"pod {p.name} is not Running and Ready")
        masters = snap.masters()
        for p in snap.data_pods:
            if isinstance(r := snap.replication(p), Exception):
                problems.append(f"{p.name} does not answer: {r}")
        if len(masters) != 1:
            problems.append(f"{len(masters)} data pods report role master: {[m.name for m in masters]}")
        master = masters[0] if len(masters) == 1 else None
        mrepl = snap.replication(master) if master else None
        if master is not None and isinstance(mrepl, Replication):
            for p in snap.data_pods:
                r = snap.replication(p)
                if p is not master and isinstance(r, Replication) and (why := in_sync(p, r, master, mrepl)):
                    problems.append(f"replica not in sync: {why}")
        named: dict[str, set[str]] = {}
        for s in snap.sentinel_pods:
            v = snap.view(s)
            if isinstance(v, Exception):
                problems.append(f"sentinel {s.name} does not answer: {v}")
                continue
            named.setdefault(f"{v.master[0]}:{v.master[1]}" if v.master else "none", set()).add(s.name)
            if not v.quorum_ok:
                problems.append(f"sentinel {s.name}: {v.quorum}")
            if v.failover_in_progress:
                problems.append(f"sentinel {s.name} has a failover in progress")
        if len(named) > 1:
            problems.append(f"sentinels disagree on the master: {_sorted_sets(named)}")
        elif named and master is not None and set(named) != {f"{master.ip}:{master.port}"}:
            problems.append(
                f"the master {master.label()} is unknown to the sentinels: they name {set(named)}"
            )
        return GroupHealth(problems=problems, master_pods=[master.name] if master else [])

    # --- one round ------------------------------------------------------------------------------
    def advance(self, move: RedisMove, env: RedisEnv) -> Advance:
        step = PHASES.get(move.phase)
        if step is None:
            raise RedisSwitchoverError(f"{move.ref}: unknown phase {move.phase!r}")
        snap = Snapshot(env)
        try:
            return step(self, move, env, snap)
        except (RedisError, OSError, LookupError) as exc:
            # Every phase is safe to run again: a Redis hiccup is "not yet" until the deadline.
            return _wait(move, env, f"{type(exc).__name__}: {exc}", WAIT_POD_S)
        finally:
            snap.close()

    # --- phases ---------------------------------------------------------------------------------
    def _start(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        pod = snap.pod(move.pod)
        if pod is None or pod.uid != move.data.get("uid"):
            return self._finish(move, env, snap, [f"{move.pod} was already replaced; nothing to move"])
        if move.role == "sentinel":
            return _go(move, env, "move", ["sentinel: evict it once the others keep quorum"], flow="sentinel")
        repl = snap.replication(pod)
        if isinstance(repl, Exception):
            return _wait(move, env, f"{pod.name} does not answer: {repl}", WAIT_POD_S)
        if not repl.is_master:
            master = snap.by_ip(repl.master[0] if repl.master else None)
            return _go(
                move,
                env,
                "move",
                [
                    f"replica of {master.label() if master else repl.master}: evict it, wait until it is back in sync"
                ],
                flow="replica",
            )
        target, why = self._pick_target(snap, pod, repl)
        if target is None:
            return _wait(move, env, why, WAIT_SENTINEL_S)
        return _go(
            move,
            env,
            "steer",
            [f"master {pod.label()} on {pod.node}: switchover target {target.label()} on {target.node}"],
            flow="master",
            target=target.name,
        )

    def _pick_target(self, snap: Snapshot, master: Pod, mrepl: Replication) -> tuple[Pod | None, str]:
        """A replica on a new node, in sync, that Sentinel may promote (priority not 0)."""
        why = "no replica on a new node"
        for p in sorted(snap.data_pods, key=lambda p: (p.role != "replica", p.name)):
            if p is master or not p.up or p.retiring:
                continue
            r = snap.replication(p)
            if isinstance(r, Exception):
                why = f"{p.name} does not answer: {r}"
                continue
            if reason := in_sync(p, r, master, mrepl):
                why = reason
                continue
            if snap.data(p).priority() == 0:
                why = f"{p.name} has replica-priority 0 (never promoted)"
                continue
            return p, ""
        return None, f"no switchover target yet: {why}"

    def _steer(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        old, new = _leg(move, snap)
        node = snap.data(new)
        original = int(new.annotations.get(PRIORITY_ANNOTATION) or node.priority())
        if original == 0:
            raise RedisSwitchoverError(
                f"{move.ref}: {new.name} has replica-priority 0, Sentinel will not promote it"
            )
        for p in snap.data_pods:
            if p.name in (old.name, new.name) or not p.up:
                continue
            prio = snap.data(p).priority()
            if 0 < prio <= STEER_PRIORITY:
                raise RedisSwitchoverError(
                    f"{move.ref}: cannot steer the failover to {new.name}: {p.name} has replica-priority {prio}"
                )
        if PRIORITY_ANNOTATION not in new.annotations:  # record before acting, for Rollback
            env.kube.annotate_pod(env.group.namespace, new.name, {PRIORITY_ANNOTATION: str(original)})
        node.set_priority(STEER_PRIORITY)
        nxt = "switchover" if move.phase == "steer" else "switchover-back"
        return _go(
            move,
            env,
            nxt,
            [
                f"replica-priority of {new.name} {original} -> {STEER_PRIORITY} so Sentinel promotes it "
                f"(original recorded on the pod as {PRIORITY_ANNOTATION})"
            ],
            wait_s=WAIT_SENTINEL_S,
        )

    def _switchover(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        old, new = _leg(move, snap)
        nxt = "confirm" if move.phase == "switchover" else "confirm-back"
        ro, rn = snap.replication(old), snap.replication(new)
        if isinstance(ro, Exception) or isinstance(rn, Exception):
            return _wait(move, env, f"{old.name} or {new.name} does not answer", WAIT_POD_S)
        if rn.is_master:  # a retried round: the promotion already happened
            actions = []
            if ro.is_master:
                # Two masters (the round that switched over died): demote the old one once
                # Sentinel has settled on the new one, keeping it paused until then.
                settled = getattr(self._sentinels_master(snap), "name", None)
                busy = any(
                    isinstance(v, SentinelView) and v.failover_in_progress
                    for v in map(snap.view, snap.sentinel_pods)
                )
                if settled == old.name and not busy:
                    raise RedisSwitchoverError(
                        f"{move.ref}: {new.label()} reports role master but the sentinels name {old.label()}"
                    )
                if settled != new.name:
                    snap.data(old).pause_writes(env.settings.redis_pause_ms)
                    return _wait(
                        move, env, f"{old.name} and {new.name} both report role master; sentinels settling", 1
                    )
                snap.data(old).demote_and_unpause((new.ip or "", new.port))
                actions.append(
                    f"{old.name} was still a master after {new.name}'s promotion: demoted and unpaused"
                )
            actions += _restore_priority(env, snap, new)
            return _go(move, env, nxt, actions or [f"{new.name} is already the master"])
        if not ro.is_master:
            raise RedisSwitchoverError(
                f"{move.ref}: {old.label()} is no longer the master and {new.name} is not either"
            )
        sentinels = snap.sentinels()
        if len(sentinels) < len(snap.sentinel_pods):
            down = [s.name for s in snap.sentinel_pods if not s.up]
            raise RedisGroupUnhealthyError(
                f"{move.ref}: sentinels {down} are not up; switchover aborted before pausing writes"
            )
        views: list[SentinelView] = []
        for s in snap.sentinel_pods:
            v = snap.view(s)
            if isinstance(v, Exception):
                raise RedisGroupUnhealthyError(
                    f"{move.ref}: sentinel {s.label()} is unreachable ({v}); switchover aborted before pausing writes"
                )
            views.append(v)
        if why := self._not_ready(snap, old, ro, new, rn, views):
            return _wait(move, env, why, WAIT_SENTINEL_S)
        since = float(move.data.get("align_since") or time.time())
        delay_ms, leader = min((_window_delay_ms(v, new), i) for i, v in enumerate(views))
        aligned = time.time() - since <= ALIGN_GIVE_UP_S
        if not aligned:
            delay_ms = 0  # aligning is an optimisation: go ahead with that sentinel
        if delay_ms > ALIGN_SLEEP_MAX_MS:
            why = f"timing SENTINEL FAILOVER to {views[leader].address[0]}'s next INFO of {new.name} (in ~{delay_ms} ms)"
            waiting = move.model_copy(update={"data": {**move.data, "align_since": round(since, 3)}})
            # Come back early: a missed window costs a whole INFO cycle.
            return Advance(_waiting(waiting, why), [], max(1, delay_ms // 1000 - 1))
        time.sleep(delay_ms / 1000)
        sentinels = [sentinels[leader], *sentinels[:leader], *sentinels[leader + 1 :]]
        try:
            rep = switchover(snap.data(old), snap.data(new), sentinels, pause_ms=env.settings.redis_pause_ms)
        except SwitchoverFailed as exc:
            notes = _restore_priority(env, snap, new)
            where = (
                f"{exc.promoted[0]} was promoted, {old.name} demoted"
                if exc.promoted
                else f"{old.name} is still the master"
            )
            raise RedisSwitchoverError(
                f"{move.ref}: switchover {old.name} -> {new.name} failed: {exc}; {where}; writes released; {'; '.join(notes)}"
            ) from exc
        record = {
            "from": old.name,
            "to": new.name,
            "paused_at": round(rep.paused_at, 3),
            "paused_ms": rep.unpaused_ms,
            "promoted_ms": rep.promoted_ms,
        }
        actions = [
            f"switchover {old.label()} -> {new.label()}: CLIENT PAUSE WRITE on {old.name}, caught up in "
            f"{rep.catchup_ms:.0f} ms, SENTINEL FAILOVER via {sentinels[0]}{' (timed to its INFO cycle)' if aligned else ''}, "
            f"promoted after {rep.promoted_ms:.0f} ms, "
            f"{'all sentinels agreed, ' if rep.agreed else ''}REPLICAOF + UNPAUSE on {old.name}: writes held {rep.unpaused_ms:.0f} ms",
            *_restore_priority(env, snap, new),
        ]
        return _go(
            move, env, nxt, actions, switchovers=[*move.data.get("switchovers", []), record], align_since=None
        )

    def _not_ready(
        self, snap: Snapshot, old: Pod, ro: Replication, new: Pod, rn: Replication, views: list[SentinelView]
    ) -> str | None:
        """Why the switchover may not start yet (None: go)."""
        if why := in_sync(new, rn, old, ro):
            return why
        for v in views:
            s = f"sentinel {v.address[0]}"
            if v.master != (old.ip, old.port):
                return f"{s} names {v.master} as master, not {old.label()}"
            if v.failover_in_progress or not v.quorum_ok:
                return f"{s}: flags {sorted(v.master_flags)}, {v.quorum}"
            entry = v.replica(new.ip or "")
            if entry is None or not entry.healthy or entry.priority != STEER_PRIORITY:
                return (
                    f"{s} does not list {new.label()} as a healthy replica with priority {STEER_PRIORITY} yet"
                )
            rivals = [
                r.ip for r in v.replicas if r.ip != new.ip and r.healthy and 0 < r.priority <= STEER_PRIORITY
            ]
            if rivals:
                return f"{s} still sees replicas {rivals} with priority <= {STEER_PRIORITY}"
        return None

    def _confirm(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        old, new = _leg(move, snap)
        named = {
            s.name: v.master if isinstance(v := snap.view(s), SentinelView) else None
            for s in snap.sentinel_pods
        }
        if any(addr != (new.ip, new.port) for addr in named.values()):
            return _wait(
                move, env, f"sentinels name {named}, waiting for all to name {new.label()}", WAIT_POD_S
            )
        ro = snap.replication(old)
        if isinstance(ro, Exception) or ro.master != (new.ip, new.port):
            return _wait(move, env, f"{old.name} does not replicate {new.name} yet", WAIT_POD_S)
        actions = [f"all {len(named)} sentinels name {new.label()} as master; {old.name} replicates it"]
        if move.phase == "confirm":
            return _go(move, env, "move", actions, wait_s=0)
        return self._finish(move, env, snap, actions)

    def _move(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        pod = snap.pod(move.pod)
        uid = str(move.data.get("uid"))
        if pod is None or pod.uid != uid or pod.terminating:
            return _go(move, env, "rejoin", [f"{move.pod} (uid {uid}) is already gone"])
        if pod.role == "sentinel":
            others = [s for s in snap.sentinel_pods if s.name != pod.name]
            for s in others:
                v = snap.view(s)
                if isinstance(v, Exception) or not v.quorum_ok or v.failover_in_progress:
                    return _wait(
                        move,
                        env,
                        f"sentinel {s.name} must reach quorum before {pod.name} goes",
                        WAIT_SENTINEL_S,
                    )
        else:
            repl = snap.replication(pod)
            if isinstance(repl, Exception):
                return _wait(move, env, f"{pod.name} does not answer: {repl}", WAIT_POD_S)
            if repl.is_master:
                raise RedisSwitchoverError(f"{move.ref}: refusing to evict {pod.label()}: it is a master")
        if blocked := env.evict(pod.name, uid):
            move, wait_s = env.refused(move)
            return _wait(move, env, blocked, wait_s, error=DrainTimeoutError)
        return _go(
            move,
            env,
            "rejoin",
            [
                f"evicted pod {pod.label()} on {pod.node} (uid {uid}); its StatefulSet recreates it on a new node"
            ],
            wait_s=1,
            throttled=None,
        )

    def _rejoin(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        pod = snap.pod(move.pod)
        if pod is None or pod.uid == move.data.get("uid") or not pod.up:
            return _wait(move, env, f"{move.pod} is not back and Ready yet", 1)
        if pod.retiring:
            return _wait(move, env, f"{pod.name} was recreated on retiring node {pod.node}", WAIT_POD_S)
        if pod.role == "sentinel":
            return self._rejoin_sentinel(move, env, snap, pod)
        master = snap.master()
        repl = snap.replication(pod)
        if isinstance(repl, Exception):
            return _wait(move, env, f"{pod.name} does not answer yet: {repl}", 1)
        if repl.is_master and master is None:
            # Never two masters: a pod that boots as master at a new IP is invisible to Sentinel.
            current = self._sentinels_master(snap, exclude=pod)
            if current is not None:
                snap.data(pod).follow((current.ip or "", current.port))
            raise RedisSwitchoverError(
                f"{move.ref}: {pod.label()} came back as a second master"
                + (f"; demoted to a replica of {current.label()}" if current else "")
            )
        if master is None:
            return _wait(move, env, "the group has no single master", WAIT_POD_S)
        mrepl = snap.replication(master)
        if isinstance(mrepl, Exception):
            return _wait(move, env, f"master {master.name} does not answer: {mrepl}", WAIT_POD_S)
        if why := in_sync(pod, repl, master, mrepl):
            return _wait(move, env, why, 1)
        actions = [
            f"{pod.name} back on {pod.node} at {pod.ip} (uid {pod.uid}), in sync with master {master.label()} "
            f"({lag_bytes(mrepl, repl)} bytes behind)"
        ]
        if move.data.get("flow") == "master" and env.settings.redis_failback:
            return _go(move, env, "steer-back", actions, wait_s=0)
        return self._finish(move, env, snap, actions)

    def _rejoin_sentinel(self, move: RedisMove, env: RedisEnv, snap: Snapshot, pod: Pod) -> Advance:
        master = snap.master()
        if master is None:
            return _wait(move, env, "the group has no single master", WAIT_POD_S)
        v = snap.view(pod)
        if isinstance(v, Exception):
            return _wait(move, env, f"{pod.name} does not answer yet: {v}", 1)
        peers = snap.live_sentinel_ips() - {pod.ip}
        known = {r.ip for r in v.replicas if r.healthy}
        if v.master != (master.ip, master.port) or not v.quorum_ok:
            return _wait(move, env, f"{pod.name} names {v.master}, {v.quorum}", WAIT_SENTINEL_S)
        if not snap.live_replica_ips(master) <= known or not peers <= {ip for ip, _ in v.peers}:
            return _wait(
                move,
                env,
                f"{pod.name} knows replicas {sorted(known)} and peers {list(v.peers)}",
                WAIT_SENTINEL_S,
            )
        for s in snap.sentinel_pods:
            other = snap.view(s)
            if s.name == pod.name:
                continue
            if (
                isinstance(other, Exception)
                or not other.quorum_ok
                or pod.ip not in {ip for ip, _ in other.peers}
            ):
                return _wait(
                    move,
                    env,
                    f"sentinel {s.name} does not list {pod.label()} with quorum yet",
                    WAIT_SENTINEL_S,
                )
        return self._finish(
            move,
            env,
            snap,
            [
                f"sentinel {pod.name} back on {pod.node} at {pod.ip}: names master {master.label()}, "
                f"knows {len(known)} replicas and {v.num_other_sentinels} peers, quorum OK on every sentinel"
            ],
        )

    def _sentinels_master(self, snap: Snapshot, exclude: Pod | None = None) -> Pod | None:
        named = {
            v.master for s in snap.sentinel_pods if isinstance(v := snap.view(s), SentinelView) and v.master
        }
        pod = snap.by_ip(next(iter(named))[0]) if len(named) == 1 else None
        return pod if pod is not None and pod is not exclude else None

    def _finish(self, move: RedisMove, env: RedisEnv, snap: Snapshot, actions: list[str]) -> Advance:
        """The pod has moved: reset the sentinels now if this was the group's last move."""
        pending = sorted(p.name for p in snap.pods.values() if p.retiring and p.name != move.pod)
        if pending:
            return _done(
                move, [*actions, f"sentinel reset deferred: {', '.join(pending)} still on retiring nodes"]
            )
        master = snap.master()
        stale = {
            s.name: entries
            for s in snap.sentinel_pods
            if master is not None
            and isinstance(v := snap.view(s), SentinelView)
            and (entries := snap.stale_entries(v, master))
        }
        if not stale:
            return _done(move, [*actions, "no sentinel holds stale entries"])
        return _go(
            move,
            env,
            "reset",
            [*actions, f"stale sentinel entries to clear, one sentinel at a time: {stale}"],
            reset_todo=sorted(stale),
            wait_s=0,
        )

    def _reset(self, move: RedisMove, env: RedisEnv, snap: Snapshot) -> Advance:
        master = snap.master()
        if master is None:
            return _wait(move, env, "the group has no single master", WAIT_POD_S)
        todo = [n for n in move.data.get("reset_todo", []) if snap.pod(n) is not None]
        sent = move.data.get("reset_sent")
        actions: list[str] = []
        if sent:
            pod = snap.pod(sent)
            if pod is None:
                return _wait(move, env, f"sentinel {sent} is gone", 1)
            v = snap.view(pod)
            if isinstance(v, Exception):
                return _wait(move, env, f"sentinel {sent} does not answer: {v}", 1)
            if why := self._unconverged(snap, pod, v, master):
                return _wait(move, env, f"after SENTINEL RESET on {sent}: {why}", 1)
            took = time.time() - float(move.data.get("reset_at", time.time()))
            actions.append(
                f"sentinel {sent} converged {took:.1f}s after its reset: {len(v.replicas)} replicas, "
                f"{v.num_other_sentinels} peers, quorum OK"
            )
            todo = [n for n in todo if n != sent]
            move = _go(move, env, "reset", [], reset_todo=todo, reset_sent=None).move
        views: dict[str, SentinelView] = {}
        for name in todo:
            pod = snap.pod(name)
            found = snap.view(pod) if pod else None
            if isinstance(found, SentinelView) and snap.stale_entries(found, master):
                views[name] = found
        if not views:
            return _done(move, [*actions, "every sentinel lists exactly the live replicas and sentinels"])
        for s in snap.sentinel_pods:  # quorum must hold while the one we reset is blind
            v = snap.view(s)
            if (
                isinstance(v, Exception)
                or not v.quorum_ok
                or v.failover_in_progress
                or v.master != (master.ip, master.port)
            ):
                return Advance(_waiting(move, f"sentinel {s.name} is not settled"), actions, WAIT_SENTINEL_S)
        # The one whose next INFO of the master comes soonest: reset it right before that INFO.
        name, v = max(views.items(), key=lambda kv: kv[1].info_refresh_ms)
        if v.info_refresh_ms < RESET_WINDOW_MS:
            wait_s = max(1, (RESET_WINDOW_MS - v.info_refresh_ms) // 1000)  # early, not late
            return Advance(
                _waiting(move, f"resetting {name} just before its next INFO (in ~{wait_s}s)"), actions, wait_s
            )
        pod = snap.pod(name)
        assert pod is not None
        snap.sentinel(pod).reset()
        actions.append(
            f"SENTINEL RESET {env.group.master_set} on {pod.label()}: forgets {snap.stale_entries(v, master)}; "
            f"its next INFO of the master is due in ~{max(SENTINEL_INFO_PERIOD_MS - v.info_refresh_ms, 0) / 1000:.1f}s"
        )
        move = _go(move, env, "reset", [], reset_sent=name, reset_at=round(time.time(), 3)).move
        return Advance(move, actions, 1)

    def _unconverged(self, snap: Snapshot, pod: Pod, v: SentinelView, master: Pod) -> str | None:
        replicas = {r.ip for r in v.replicas if r.healthy}
        if v.master != (master.ip, master.port):
            return f"names {v.master}"
        if replicas != snap.live_replica_ips(master) or len(v.replicas) != len(replicas):
            return f"lists replicas {sorted(r.ip for r in v.replicas)}"
        if {ip for ip, _ in v.peers} != snap.live_sentinel_ips() - {pod.ip}:
            return f"knows peers {sorted(ip for ip, _ in v.peers)}"
        if not v.quorum_ok:
            return v.quorum
        return None

    # --- after success or failure ---------------------------------------------------------------
    def cleanup(self, env: RedisEnv) -> list[str]:
        g = env.group
        holder = AsgLock(aws_client("dynamodb", env.settings), env.settings.lock_table, scope="redis").holder(
            g.ref
        )
        if holder and not holder.startswith(env.ctx.execution_id + "#"):
            return [f"Redis group {g.ref}: left alone, {holder} is moving it"]
        snap = Snapshot(env)
        try:
            return self._cleanup(env, snap)
        finally:
            snap.close()

    def _cleanup(self, env: RedisEnv, snap: Snapshot) -> list[str]:
        g = env.group
        notes: list[str] = []
        masters = snap.masters()
        if len(masters) > 1:
            # Demote before anything is unpaused: a second master must not take writes again.
            keep = self._sentinels_master(snap)
            if keep is None or keep not in masters:
                notes.append(
                    f"Redis group {g.ref}: {len(masters)} masters and no sentinel majority to pick one"
                )
            else:
                for m in masters:
                    if m is not keep:
                        snap.data(m).demote_and_unpause((keep.ip or "", keep.port))
                        notes.append(
                            f"Redis group {g.ref}: demoted second master {m.label()} to follow {keep.name}"
                        )
        elif not masters:
            notes.append(f"Redis group {g.ref}: no data pod reports role master")
        unpaused = 0
        for p in snap.data_pods:
            try:
                if p.up:
                    snap.data(p).unpause()
                    unpaused += 1
            except (RedisError, OSError) as exc:
                notes.append(f"Redis group {g.ref}: could not unpause {p.name}: {exc}")
            notes += _restore_priority(env, snap, p)
        if unpaused:
            notes.append(f"Redis group {g.ref}: CLIENT UNPAUSE on {unpaused} data pods")
        return notes + self._clear_stale(env)

    def _clear_stale(self, env: RedisEnv) -> list[str]:
        """A roll that stopped before the group's last move never ran the `reset` phase: every
        sentinel still lists the moved pods' old addresses. Clear them as that phase does (one
        sentinel at a time, each converged before the next), here in one bounded invocation."""
        g = env.group
        deadline = time.monotonic() + CLEANUP_SETTLE_S
        while True:
            snap = Snapshot(env)
            try:
                master, down = snap.master(), sorted(p.name for p in snap.pods.values() if not p.up)
                stale = {
                    s.name: entries
                    for s in snap.sentinel_pods
                    if master is not None
                    and isinstance(v := snap.view(s), SentinelView)
                    and (entries := snap.stale_entries(v, master))
                }
            finally:
                snap.close()
            if master is not None and not stale:
                return []
            if master is not None and not down:
                break
            # A pod the failed roll had just evicted is coming back: reset once it is there.
            if time.monotonic() > deadline:
                why = f"pods {down} are not up" if master is not None else "no single master"
                return [f"WARNING: Redis group {g.ref}: sentinel entries left as they are: {why}"]
            time.sleep(CLEANUP_POLL_S)
        notes = [f"Redis group {g.ref}: stale sentinel entries to clear, one sentinel at a time: {stale}"]
        move = RedisMove(
            namespace=g.namespace,
            group=g.name,
            kind="sentinel",
            pod=f"{g.name}-sentinels",
            role="sentinel",
            statefulset="",
            phase="reset",
            data={"reset_todo": sorted(stale)},
        )
        deadline = time.monotonic() + CLEANUP_RESET_BUDGET_S * len(stale)
        while True:
            snap = Snapshot(env)
            try:
                adv = self._reset(move, env, snap)
            except (RedisError, OSError, LookupError) as exc:
                adv = Advance(_waiting(move, f"{type(exc).__name__}: {exc}"), [], 1)
            finally:
                snap.close()
            notes += [f"Redis group {g.ref}: {a}" for a in adv.actions]
            move = adv.move
            if move.done:
                return notes
            if time.monotonic() > deadline:
                return [
                    *notes,
                    f"WARNING: Redis group {g.ref}: sentinels not converged: {move.data.get('waiting')}",
                ]
            time.sleep(CLEANUP_POLL_S)


def _window_delay_ms(view: SentinelView, target: Pod) -> int:
    """How long until this sentinel's last INFO of `target` is ALIGN_WINDOW_MS old."""
    entry = view.replica(target.ip or "")
    age = entry.info_refresh_ms if entry else 0
    lo, hi = ALIGN_WINDOW_MS
    if age < lo:
        return lo - age
    if age <= hi:
        return 0
    # The next INFO comes when the last is SENTINEL_INFO_PERIOD_MS old (an overdue one: now).
    return max(SENTINEL_INFO_PERIOD_MS - age, 0) + lo


def _leg(move: RedisMove, snap: Snapshot) -> tuple[Pod, Pod]:
    """(old master, new master) of the current switchover leg: out to the target, then back."""
    target = snap.pod(str(move.data.get("target")))
    pod = snap.pod(move.pod)
    if target is None or pod is None:
        raise RedisSwitchoverError(f"{move.ref}: {move.pod} or its switchover target is gone")
    if not (target.up and pod.up):
        raise RedisSwitchoverError(f"{move.ref}: {pod.name} or {target.name} is not up")
    back = move.phase.endswith("-back")
    return (target, pod) if back else (pod, target)


def annotation_problems(namespace: str, pods: Iterable[Pod]) -> list[str]:
    """Annotations the procedure parses, checked at plan time so that a bad value is a named
    blocker, never a ValueError in the middle of a switchover."""
    out = []
    for p in pods:
        value = p.annotations.get(PRIORITY_ANNOTATION)
        if value is not None and not value.strip().isdigit():
            out.append(
                f"pod {namespace}/{p.name} has {PRIORITY_ANNOTATION}={value!r}: not a non-negative integer"
            )
    return out


def _restore_priority(env: RedisEnv, snap: Snapshot, pod: Pod) -> list[str]:
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
            snap.data(pod).set_priority(int(original))
    except (RedisError, OSError) as exc:
        return [f"could not restore replica-priority {original} on {pod.name}: {exc}"]
    env.kube.annotate_pod(env.group.namespace, pod.name, {PRIORITY_ANNOTATION: None})
    return [f"replica-priority of {pod.name} restored to {original}"]


def _waiting(move: RedisMove, why: str) -> RedisMove:
    return move.model_copy(update={"data": {**move.data, "waiting": why}})


def _wait(
    move: RedisMove,
    env: RedisEnv,
    why: str,
    wait_s: int,
    *,
    error: type[PermanentError] = RedisMoveTimeoutError,
) -> Advance:
    """Not yet: poll again in `wait_s` (a Wait state), or stop once the phase's deadline passed
    (`error`: DrainTimeoutError when a PDB kept refusing the eviction, as for any pod)."""
    if move.phase_deadline is None:  # the first phase starts its clock on its first round
        move = move.model_copy(update={"phase_deadline": env.deadline()})
    elif env.now > move.phase_deadline:
        raise error(f"{move.ref}: phase {move.phase} timed out: {why}")
    return Advance(_waiting(move, why), [], wait_s)


def _go(
    move: RedisMove, env: RedisEnv, phase: str, actions: list[str], *, wait_s: int = 0, **data: Any
) -> Advance:
    merged = {k: v for k, v in {**move.data, **data}.items() if k != "waiting" and v is not None}
    nxt = move.model_copy(update={"phase": phase, "phase_deadline": env.deadline(), "data": merged})
    return Advance(nxt, actions, wait_s)


def _done(move: RedisMove, actions: list[str]) -> Advance:
    data = {
        k: v for k, v in move.data.items() if k not in ("waiting", "reset_todo", "reset_sent", "reset_at")
    }
    return Advance(
        move.model_copy(update={"phase": "done", "done": True, "phase_deadline": None, "data": data}),
        actions,
        0,
    )


def _sorted_sets(named: dict[str, set[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in sorted(named.items())}


PHASES: dict[str, Step] = {
    "start": SentinelProcedure._start,
    "steer": SentinelProcedure._steer,
    "switchover": SentinelProcedure._switchover,
    "confirm": SentinelProcedure._confirm,
    "move": SentinelProcedure._move,
    "rejoin": SentinelProcedure._rejoin,
    "steer-back": SentinelProcedure._steer,
    "switchover-back": SentinelProcedure._switchover,
    "confirm-back": SentinelProcedure._confirm,
    "reset": SentinelProcedure._reset,
}
