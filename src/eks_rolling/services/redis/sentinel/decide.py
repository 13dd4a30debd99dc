"""The Sentinel procedure's decisions: pure functions of a Survey, the move and its typed state,
and the time (`now`, seconds). Each phase gives Wait (why, when to look again), Act (actions, the
next phase) or Abort (a named error, after leaving the group safe). Nothing here writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ....errors import (
    RedisGroupUnhealthyError,
    RedisSwitchoverError,
)
from ....models import RedisMove
from ....redis.sentinel import Replication, SentinelView, lag_bytes
from ..procedure import Abort, Act, Evict, GroupHealth, Wait
from .model import (
    Action,
    Demote,
    Follow,
    PauseWrites,
    Phase,
    RecordPriority,
    Reset,
    RestorePriority,
    SentinelMoveState,
    SetPriority,
    Switchover,
    Unpause,
)
from .survey import PRIORITY_ANNOTATION, Pod, Survey, annotation_problems, in_sync

STEER_PRIORITY = 1  # lowest non-zero: Sentinel prefers the lowest (0 = never promote)
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

Decision = Wait[SentinelMoveState, Action] | Act[SentinelMoveState, Action] | Abort[Action]


@dataclass(frozen=True)
class Round:
    """What one phase decision sees."""

    move: RedisMove
    state: SentinelMoveState
    survey: Survey
    now: float  # seconds since the epoch
    master_set: str  # the group's Sentinel master name
    failback: bool = True  # settings.redis_failback

    @property
    def phase(self) -> str:
        return self.move.phase


def decide(r: Round) -> Decision:
    phase = PHASES.get(r.phase)
    if phase is None:
        return Abort(RedisSwitchoverError(f"{r.move.ref}: unknown phase {r.phase!r}"))
    return phase(r)


def order(role: str) -> int:
    # On one node: replicas first, then sentinels, the master last (its switchover then sees a
    # settled group).
    return {"replica": 0, "sentinel": 1, "master": 2}.get(role, 1)


# --- plan time ----------------------------------------------------------------------------------
def health(sv: Survey, namespace: str) -> GroupHealth:
    problems: list[str] = annotation_problems(namespace, sv.pods.values())
    for p in sv.pods.values():
        if not p.up:
            problems.append(f"pod {p.name} is not Running and Ready")
    masters = sv.masters()
    for p in sv.data_pods:
        if isinstance(r := sv.replication(p), Exception):
            problems.append(f"{p.name} does not answer: {r}")
    if len(masters) != 1:
        problems.append(f"{len(masters)} data pods report role master: {[m.name for m in masters]}")
    master = masters[0] if len(masters) == 1 else None
    mrepl = sv.replication(master) if master else None
    if master is not None and isinstance(mrepl, Replication):
        for p in sv.data_pods:
            r = sv.replication(p)
            if p is not master and isinstance(r, Replication) and (why := in_sync(p, r, master, mrepl)):
                problems.append(f"replica not in sync: {why}")
    named: dict[str, set[str]] = {}
    for s in sv.sentinel_pods:
        v = sv.view(s)
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
        problems.append(f"the master {master.label()} is unknown to the sentinels: they name {set(named)}")
    return GroupHealth(problems=problems, master_pods=[master.name] if master else [])


# --- phases -------------------------------------------------------------------------------------
def start(r: Round) -> Decision:
    sv, move = r.survey, r.move
    pod = sv.pod(move.pod)
    if pod is None or pod.uid != r.state.uid:
        return finish(r, [f"{move.pod} was already replaced; nothing to move"])
    if move.role == "sentinel":
        return Act(
            "move",
            notes=("sentinel: evict it once the others keep quorum",),
            state=r.state.go(flow="sentinel"),
        )
    repl = sv.replication(pod)
    if isinstance(repl, Exception):
        return Wait(f"{pod.name} does not answer: {repl}", WAIT_POD_S)
    if not repl.is_master:
        master = sv.by_ip(repl.master[0] if repl.master else None)
        return Act(
            "move",
            notes=(
                f"replica of {master.label() if master else repl.master}: evict it, wait until it is back in sync",
            ),
            state=r.state.go(flow="replica"),
        )
    target, why = pick_target(sv, pod, repl)
    if target is None:
        return Wait(why, WAIT_SENTINEL_S)
    return Act(
        "steer",
        notes=(f"master {pod.label()} on {pod.node}: switchover target {target.label()} on {target.node}",),
        state=r.state.go(flow="master", target=target.name),
    )


def pick_target(sv: Survey, master: Pod, mrepl: Replication) -> tuple[Pod | None, str]:
    """A replica on a new node, in sync, that Sentinel may promote (priority not 0)."""
    why = "no replica on a new node"
    for p in sorted(sv.data_pods, key=lambda p: (p.role != "replica", p.name)):
        if p is master or not p.up or p.retiring:
            continue
        r = sv.replication(p)
        if isinstance(r, Exception):
            why = f"{p.name} does not answer: {r}"
            continue
        if reason := in_sync(p, r, master, mrepl):
            why = reason
            continue
        if sv.priority(p) == 0:
            why = f"{p.name} has replica-priority 0 (never promoted)"
            continue
        return p, ""
    return None, f"no switchover target yet: {why}"


def leg(r: Round) -> tuple[Pod, Pod] | Abort[Action]:
    """(old master, new master) of the current switchover leg: out to the target, then back."""
    target = r.survey.pod(str(r.state.target))
    pod = r.survey.pod(r.move.pod)
    if target is None or pod is None:
        return Abort(RedisSwitchoverError(f"{r.move.ref}: {r.move.pod} or its switchover target is gone"))
    if not (target.up and pod.up):
        return Abort(RedisSwitchoverError(f"{r.move.ref}: {pod.name} or {target.name} is not up"))
    return (target, pod) if r.phase.endswith("-back") else (pod, target)


def steer(r: Round) -> Decision:
    sv, ref = r.survey, r.move.ref
    found = leg(r)
    if isinstance(found, Abort):
        return found
    old, new = found
    original = int(new.annotations.get(PRIORITY_ANNOTATION) or sv.priority(new))
    if original == 0:
        return Abort(
            RedisSwitchoverError(f"{ref}: {new.name} has replica-priority 0, Sentinel will not promote it")
        )
    for p in sv.data_pods:
        if p.name in (old.name, new.name) or not p.up:
            continue
        prio = sv.priority(p)
        if 0 < prio <= STEER_PRIORITY:
            return Abort(
                RedisSwitchoverError(
                    f"{ref}: cannot steer the failover to {new.name}: {p.name} has replica-priority {prio}"
                )
            )
    actions: list[Action] = []
    if PRIORITY_ANNOTATION not in new.annotations:  # record before acting, for Rollback
        actions.append(RecordPriority(new.name, original))
    actions.append(SetPriority(new.name, STEER_PRIORITY))
    return Act(
        "switchover" if r.phase == "steer" else "switchover-back",
        actions=tuple(actions),
        notes=(
            f"replica-priority of {new.name} {original} -> {STEER_PRIORITY} so Sentinel promotes it "
            f"(original recorded on the pod as {PRIORITY_ANNOTATION})",
        ),
        wait_s=WAIT_SENTINEL_S,
    )


def switchover(r: Round) -> Decision:
    sv, ref = r.survey, r.move.ref
    found = leg(r)
    if isinstance(found, Abort):
        return found
    old, new = found
    nxt: Phase = "confirm" if r.phase == "switchover" else "confirm-back"
    ro, rn = sv.replication(old), sv.replication(new)
    if isinstance(ro, Exception) or isinstance(rn, Exception):
        return Wait(f"{old.name} or {new.name} does not answer", WAIT_POD_S)
    if rn.is_master:  # a retried round: the promotion already happened
        if not ro.is_master:
            return Act(
                nxt, actions=(RestorePriority(new.name),), notes=(f"{new.name} is already the master",)
            )
        # Two masters (the round that switched over died): demote the old one once Sentinel
        # has settled on the new one, keeping it paused until then.
        settled = getattr(sv.sentinels_master(), "name", None)
        busy = any(
            isinstance(v, SentinelView) and v.failover_in_progress for v in map(sv.view, sv.sentinel_pods)
        )
        if settled == old.name and not busy:
            return Abort(
                RedisSwitchoverError(
                    f"{ref}: {new.label()} reports role master but the sentinels name {old.label()}"
                )
            )
        if settled != new.name:
            return Wait(
                f"{old.name} and {new.name} both report role master; sentinels settling",
                1,
                actions=(PauseWrites(old.name),),
            )
        return Act(
            nxt,
            actions=(Demote(old.name, new.name), RestorePriority(new.name)),
            notes=(f"{old.name} was still a master after {new.name}'s promotion: demoted and unpaused",),
        )
    if not ro.is_master:
        return Abort(
            RedisSwitchoverError(f"{ref}: {old.label()} is no longer the master and {new.name} is not either")
        )
    if down := [s.name for s in sv.sentinel_pods if not s.up]:
        return Abort(
            RedisGroupUnhealthyError(
                f"{ref}: sentinels {down} are not up; switchover aborted before pausing writes"
            )
        )
    views: list[SentinelView] = []
    for s in sv.sentinel_pods:
        v = sv.view(s)
        if isinstance(v, Exception):
            return Abort(
                RedisGroupUnhealthyError(
                    f"{ref}: sentinel {s.label()} is unreachable ({v}); switchover aborted before pausing writes"
                )
            )
        views.append(v)
    if why := not_ready(old, ro, new, rn, views):
        return Wait(why, WAIT_SENTINEL_S)
    since = r.state.align_since or r.now
    delay_ms, leader = min((window_delay_ms(v, new), i) for i, v in enumerate(views))
    aligned = r.now - since <= ALIGN_GIVE_UP_S
    if not aligned:
        delay_ms = 0  # aligning is an optimisation: go ahead with that sentinel
    if delay_ms > ALIGN_SLEEP_MAX_MS:
        # Come back early: a missed window costs a whole INFO cycle.
        return Wait(
            f"timing SENTINEL FAILOVER to {views[leader].address[0]}'s next INFO of {new.name} (in ~{delay_ms} ms)",
            max(1, delay_ms // 1000 - 1),
            state=r.state.model_copy(update={"align_since": round(since, 3)}),
            timed=False,
        )
    return Act(
        nxt,
        actions=(Switchover(old.name, new.name, leader, delay_ms, aligned), RestorePriority(new.name)),
        state=r.state.go(align_since=None),
    )


def not_ready(old: Pod, ro: Replication, new: Pod, rn: Replication, views: list[SentinelView]) -> str | None:
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
            return f"{s} does not list {new.label()} as a healthy replica with priority {STEER_PRIORITY} yet"
        rivals = [
            r.ip for r in v.replicas if r.ip != new.ip and r.healthy and 0 < r.priority <= STEER_PRIORITY
        ]
        if rivals:
            return f"{s} still sees replicas {rivals} with priority <= {STEER_PRIORITY}"
    return None


def window_delay_ms(view: SentinelView, target: Pod) -> int:
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


def confirm(r: Round) -> Decision:
    sv = r.survey
    found = leg(r)
    if isinstance(found, Abort):
        return found
    old, new = found
    named = {
        s.name: v.master if isinstance(v := sv.view(s), SentinelView) else None for s in sv.sentinel_pods
    }
    if any(addr != (new.ip, new.port) for addr in named.values()):
        return Wait(f"sentinels name {named}, waiting for all to name {new.label()}", WAIT_POD_S)
    ro = sv.replication(old)
    if isinstance(ro, Exception) or ro.master != (new.ip, new.port):
        return Wait(f"{old.name} does not replicate {new.name} yet", WAIT_POD_S)
    notes = [f"all {len(named)} sentinels name {new.label()} as master; {old.name} replicates it"]
    if r.phase == "confirm":
        return Act("move", notes=tuple(notes))
    return finish(r, notes)


def move(r: Round) -> Decision:
    sv, ref = r.survey, r.move.ref
    pod = sv.pod(r.move.pod)
    uid = str(r.state.uid)
    if pod is None or pod.uid != uid or pod.terminating:
        return Act("rejoin", notes=(f"{r.move.pod} (uid {uid}) is already gone",))
    if pod.role == "sentinel":
        for s in sv.sentinel_pods:
            if s.name == pod.name:
                continue
            v = sv.view(s)
            if isinstance(v, Exception) or not v.quorum_ok or v.failover_in_progress:
                return Wait(f"sentinel {s.name} must reach quorum before {pod.name} goes", WAIT_SENTINEL_S)
    else:
        repl = sv.replication(pod)
        if isinstance(repl, Exception):
            return Wait(f"{pod.name} does not answer: {repl}", WAIT_POD_S)
        if repl.is_master:
            return Abort(RedisSwitchoverError(f"{ref}: refusing to evict {pod.label()}: it is a master"))
    # Through the Eviction API: a 429 (a PDB) turns this into a Wait that ends in DrainTimeoutError.
    return Act(
        "rejoin",
        actions=(Evict(pod.name, uid),),
        notes=(
            f"evicted pod {pod.label()} on {pod.node} (uid {uid}); its StatefulSet recreates it on a new node",
        ),
        state=r.state.go(throttled=None),
        wait_s=1,
    )


def rejoin(r: Round) -> Decision:
    sv, ref = r.survey, r.move.ref
    pod = sv.pod(r.move.pod)
    if pod is None or pod.uid == r.state.uid or not pod.up:
        return Wait(f"{r.move.pod} is not back and Ready yet", 1)
    if pod.retiring:
        return Wait(f"{pod.name} was recreated on retiring node {pod.node}", WAIT_POD_S)
    if pod.role == "sentinel":
        return rejoin_sentinel(r, pod)
    master = sv.master()
    repl = sv.replication(pod)
    if isinstance(repl, Exception):
        return Wait(f"{pod.name} does not answer yet: {repl}", 1)
    if repl.is_master and master is None:
        # Never two masters: a pod that boots as master at a new IP is invisible to Sentinel.
        current = sv.sentinels_master(exclude=pod)
        return Abort(
            RedisSwitchoverError(
                f"{ref}: {pod.label()} came back as a second master"
                + (f"; demoted to a replica of {current.label()}" if current else "")
            ),
            actions=(Follow(pod.name, current.name),) if current else (),
        )
    if master is None:
        return Wait("the group has no single master", WAIT_POD_S)
    mrepl = sv.replication(master)
    if isinstance(mrepl, Exception):
        return Wait(f"master {master.name} does not answer: {mrepl}", WAIT_POD_S)
    if why := in_sync(pod, repl, master, mrepl):
        return Wait(why, 1)
    notes = [
        f"{pod.name} back on {pod.node} at {pod.ip} (uid {pod.uid}), in sync with master {master.label()} "
        f"({lag_bytes(mrepl, repl)} bytes behind)"
    ]
    if r.state.flow == "master" and r.failback:
        return Act("steer-back", notes=tuple(notes))
    return finish(r, notes)


def rejoin_sentinel(r: Round, pod: Pod) -> Decision:
    sv = r.survey
    master = sv.master()
    if master is None:
        return Wait("the group has no single master", WAIT_POD_S)
    v = sv.view(pod)
    if isinstance(v, Exception):
        return Wait(f"{pod.name} does not answer yet: {v}", 1)
    peers = sv.live_sentinel_ips() - {pod.ip}
    known = {x.ip for x in v.replicas if x.healthy}
    if v.master != (master.ip, master.port) or not v.quorum_ok:
        return Wait(f"{pod.name} names {v.master}, {v.quorum}", WAIT_SENTINEL_S)
    if not sv.live_replica_ips(master) <= known or not peers <= {ip for ip, _ in v.peers}:
        return Wait(f"{pod.name} knows replicas {sorted(known)} and peers {list(v.peers)}", WAIT_SENTINEL_S)
    for s in sv.sentinel_pods:
        other = sv.view(s)
        if s.name == pod.name:
            continue
        if isinstance(other, Exception) or not other.quorum_ok or pod.ip not in {ip for ip, _ in other.peers}:
            return Wait(f"sentinel {s.name} does not list {pod.label()} with quorum yet", WAIT_SENTINEL_S)
    return finish(
        r,
        [
            f"sentinel {pod.name} back on {pod.node} at {pod.ip}: names master {master.label()}, "
            f"knows {len(known)} replicas and {v.num_other_sentinels} peers, quorum OK on every sentinel"
        ],
    )


def finish(r: Round, notes: list[str]) -> Decision:
    """The pod has moved: reset the sentinels now if this was the group's last move."""
    sv = r.survey
    pending = sorted(p.name for p in sv.pods.values() if p.retiring and p.name != r.move.pod)
    if pending:
        return Act(
            "done", notes=(*notes, f"sentinel reset deferred: {', '.join(pending)} still on retiring nodes")
        )
    stale = sv.stale()
    if not stale:
        return Act("done", notes=(*notes, "no sentinel holds stale entries"))
    return Act(
        "reset",
        notes=(*notes, f"stale sentinel entries to clear, one sentinel at a time: {stale}"),
        state=r.state.go(reset_todo=sorted(stale)),
    )


def reset(r: Round) -> Decision:
    """SENTINEL RESET of the sentinels holding stale entries, one at a time, each converged
    (replicas, peers, quorum) before the next, and each timed just before its next INFO."""
    sv, state = r.survey, r.state
    master = sv.master()
    if master is None:
        return Wait("the group has no single master", WAIT_POD_S)
    todo = [n for n in state.reset_todo or [] if sv.pod(n) is not None]
    notes: list[str] = []
    converged = False
    if sent := state.reset_sent:
        pod = sv.pod(sent)
        if pod is None:
            return Wait(f"sentinel {sent} is gone", 1)
        v = sv.view(pod)
        if isinstance(v, Exception):
            return Wait(f"sentinel {sent} does not answer: {v}", 1)
        if why := unconverged(sv, pod, v, master):
            return Wait(f"after SENTINEL RESET on {sent}: {why}", 1)
        took = r.now - (state.reset_at if state.reset_at is not None else r.now)
        notes.append(
            f"sentinel {sent} converged {took:.1f}s after its reset: {len(v.replicas)} replicas, "
            f"{v.num_other_sentinels} peers, quorum OK"
        )
        todo = [n for n in todo if n != sent]
        state, converged = state.go(reset_todo=todo, reset_sent=None), True
    views: dict[str, SentinelView] = {}
    for name in todo:
        pod = sv.pod(name)
        found = sv.view(pod) if pod else None
        if isinstance(found, Exception):  # silence is not "clean": ask again next round
            return Wait(f"sentinel {name} does not answer: {found}", 1, state=state, notes=tuple(notes))
        if isinstance(found, SentinelView) and sv.stale_entries(found, master):
            views[name] = found
    if not views:
        return Act(
            "done",
            notes=(*notes, "every sentinel lists exactly the live replicas and sentinels"),
            state=state,
        )
    for s in sv.sentinel_pods:  # quorum must hold while the one we reset is blind
        v = sv.view(s)
        if (
            isinstance(v, Exception)
            or not v.quorum_ok
            or v.failover_in_progress
            or v.master != (master.ip, master.port)
        ):
            return Wait(
                f"sentinel {s.name} is not settled",
                WAIT_SENTINEL_S,
                state=state,
                notes=tuple(notes),
                timed=False,
                restart_clock=converged,
            )
    # The one whose next INFO of the master comes soonest: reset it right before that INFO.
    name, v = max(views.items(), key=lambda kv: kv[1].info_refresh_ms)
    if v.info_refresh_ms < RESET_WINDOW_MS:
        wait_s = max(1, (RESET_WINDOW_MS - v.info_refresh_ms) // 1000)  # early, not late
        return Wait(
            f"resetting {name} just before its next INFO (in ~{wait_s}s)",
            wait_s,
            state=state,
            notes=tuple(notes),
            timed=False,
            restart_clock=converged,
        )
    pod = sv.pod(name)
    assert pod is not None
    notes.append(
        f"SENTINEL RESET {r.master_set} on {pod.label()}: forgets {sv.stale_entries(v, master)}; "
        f"its next INFO of the master is due in ~{max(SENTINEL_INFO_PERIOD_MS - v.info_refresh_ms, 0) / 1000:.1f}s"
    )
    return Act(
        "reset",
        actions=(Reset(name),),
        notes=tuple(notes),
        state=state.go(reset_sent=name, reset_at=round(r.now, 3)),
        wait_s=1,
    )


def unconverged(sv: Survey, pod: Pod, v: SentinelView, master: Pod) -> str | None:
    replicas = {x.ip for x in v.replicas if x.healthy}
    if v.master != (master.ip, master.port):
        return f"names {v.master}"
    if replicas != sv.live_replica_ips(master) or len(v.replicas) != len(replicas):
        return f"lists replicas {sorted(x.ip for x in v.replicas)}"
    if {ip for ip, _ in v.peers} != sv.live_sentinel_ips() - {pod.ip}:
        return f"knows peers {sorted(ip for ip, _ in v.peers)}"
    if not v.quorum_ok:
        return v.quorum
    return None


# --- after success or failure -------------------------------------------------------------------
def cleanup(sv: Survey, ref: str) -> tuple[list[Action], list[str]]:
    """What cleanup does to the data pods, and what it notes: a second master demoted first
    (it must not take writes again once unpaused), then every up data pod unpaused and its
    recorded replica-priority restored."""
    actions: list[Action] = []
    notes: list[str] = []
    masters = sv.masters()
    if len(masters) > 1:
        keep = sv.sentinels_master()
        if keep is None or keep not in masters:
            notes.append(f"Redis group {ref}: {len(masters)} masters and no sentinel majority to pick one")
        else:
            for m in masters:
                if m is not keep:
                    actions.append(Demote(m.name, keep.name))
                    notes.append(
                        f"Redis group {ref}: demoted second master {m.label()} to follow {keep.name}"
                    )
    elif not masters:
        notes.append(f"Redis group {ref}: no data pod reports role master")
    for p in sv.data_pods:
        if p.up:
            actions.append(Unpause(p.name))
        if PRIORITY_ANNOTATION in p.annotations:
            actions.append(RestorePriority(p.name))
    return actions, notes


def _sorted_sets(named: dict[str, set[str]]) -> dict[str, list[str]]:
    return {k: sorted(v) for k, v in sorted(named.items())}


PHASES: dict[str, Callable[[Round], Decision]] = {
    "start": start,
    "steer": steer,
    "switchover": switchover,
    "confirm": confirm,
    "move": move,
    "rejoin": rejoin,
    "steer-back": steer,
    "switchover-back": switchover,
    "confirm-back": confirm,
    "reset": reset,
}
