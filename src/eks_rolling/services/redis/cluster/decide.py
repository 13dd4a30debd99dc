"""Redis Cluster: the pure decisions of the phases. Each phase is a function of a Round (the
survey of the group, the move and its typed state, the time) giving Wait (why, when to look
again), Act (actions, the next phase) or Abort (a named error); the helpers below them are
checks over every node's CLUSTER NODES view (`Views`). Nothing here writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ....errors import RedisGroupUnhealthyError, RedisSwitchoverError, RedisTempNodeError
from ....models import RedisMove
from ....redis.cluster import ranges_text
from ..procedure import Abort, Act, Evict, Wait
from .checks import (
    cluster_problems,
    failback_pending,
    lagging_nodes,
    myself,
    norm,
    not_announced,
    not_listed,
    peers_to_meet,
    remembering,
    retry,
    roles_agree,
    shaking_hands,
    stale_self,
    start_path,
    took_over,
    unaware_of,
)
from .model import (
    Action,
    Announce,
    ClusterMoveState,
    Configure,
    CreateTemp,
    DeleteTemp,
    Failover,
    Forget,
    Meet,
    Phase,
    Replicate,
)
from .survey import (
    FAILOVER_ATTEMPTS,
    FOR_POD_ANNOTATION,
    READ_ERRORS,
    RUN_LABEL,
    ZONE_LABEL,
    Addr,
    Pod,
    Survey,
    Views,
    short,
    state_of,
    temp_name,
)

# --- the phases: a Round in, a Decision out ------------------------------------------------------
WAIT_S = 1  # nodes gossiping, pods starting, replicas catching up: look again in a second

Decision = Wait[ClusterMoveState, Action] | Act[ClusterMoveState, Action] | Abort[Action]


@dataclass(frozen=True)
class Round:
    """What one phase decision sees."""

    move: RedisMove
    state: ClusterMoveState
    survey: Survey
    now: datetime  # the step clock: stored timestamps, the move's total
    wall: float  # real seconds since the epoch: Redis's own timers (a manual failover's 5 s)
    run: str  # this run's taint value, on its temporary pods

    @property
    def temp(self) -> str:
        return str(self.state.temp)

    @property
    def slots(self) -> list[tuple[int, int]]:
        return norm(self.state.slots or [])


def decide(r: Round) -> Decision:
    phase = PHASES.get(r.move.phase)
    if phase is None:
        return Abort(RedisSwitchoverError(f"{r.move.ref}: unknown phase {r.move.phase!r}"))
    return phase(r)


def wait(why: str, **kw: Any) -> Wait[ClusterMoveState, Action]:
    return Wait(why, WAIT_S, **kw)


def health(sv: Survey, namespace: str, run: str, own_temp: str | None = None) -> tuple[list[str], list[str]]:
    """Is the group safe to touch (plan time, and before a move starts)? (problems, master pods)"""
    problems = [
        f"pod {namespace}/{n} is {state_of(p)}" for n, p in sv.members.items() if p is None or not p.running
    ]
    views, errors = sv.look(sv.addrs())
    ids = {me.id for es in views.values() if (me := myself(es)) is not None}
    masters = [n for n, es in views.items() if (me := myself(es)) is not None and me.is_master and me.slots]
    for name in views:
        try:
            state = sv.cluster_state(name)
        except READ_ERRORS as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        if state != "ok":
            problems.append(f"{name}: cluster_state:{state}")
    problems += cluster_problems(views, errors, ids if not errors and len(ids) == len(sv.members) else None)
    if not masters and not problems:
        problems.append("no node holds slots")
    for tp in sv.leftovers:
        tp_run = tp.labels.get(RUN_LABEL, "?")
        if tp.name == own_temp and tp_run == run:
            continue  # created by an earlier attempt of this very phase
        problems.append(
            f"temporary pod {tp.name} of run {tp_run} is still there: fail back to "
            f"{tp.annotations.get(FOR_POD_ANNOTATION, '?')} if it is master, CLUSTER FORGET it on every node, delete it"
        )
    return sorted(set(problems)), sorted(masters)


def nudge(r: Round, views: Views, among: dict[str, Addr]) -> tuple[ClusterMoveState, tuple[Action, ...]]:
    """Announce (once per phase and node) the role of every node others have not caught up with."""
    done = list(r.state.announced or [])
    todo = [n for n in lagging_nodes(views) if n not in done and n in among]
    return r.state.model_copy(update={"announced": done + todo}), tuple(
        Announce(n, tuple(among)) for n in todo
    )


def lagging(r: Round, why: str, views: Views, among: dict[str, Addr]) -> Decision:
    """Not yet: wait, announcing the roles others lag behind on."""
    state, actions = nudge(r, views, among)
    return wait(why, state=state, actions=actions)


def survey_all(r: Round, *, with_temp: bool = True) -> tuple[dict[str, Addr], Views, str | None]:
    """Every group pod's (and T's) view: (addresses, views, why not yet: a pod not running or
    a node not answering)."""
    sv = r.survey
    down = sv.down()
    addrs = sv.addrs(with_temp=with_temp)
    if with_temp and r.temp not in addrs:
        down.append(f"temporary pod {r.temp} is {state_of(sv.temp)}")
    if down:
        return addrs, {}, "; ".join(down)
    views, errors = sv.look(addrs)
    return addrs, views, "; ".join(f"{n}: {e}" for n, e in errors.items()) or None


def a_still_master(r: Round, views: Views) -> Abort[Action] | None:
    me = myself(views.get(r.move.pod, []))
    if me is not None and not (me.is_master and norm(me.slots) == r.slots):
        return Abort(
            RedisSwitchoverError(
                f"{r.move.ref} is no longer master of {ranges_text(r.slots)} "
                f"({','.join(sorted(me.flags))}, slots {ranges_text(me.slots)}) before the planned failover"
            )
        )
    return None


def failed_over(
    r: Round, phase: Phase, *, notes: tuple[str, ...], actions: tuple[Action, ...] = (), **update: Any
) -> Decision:
    """A CLUSTER FAILOVER sent (or found taken): verify it in `phase`, timed on the wall clock."""
    return Act(phase, actions, notes, r.state.go(failover_at=r.wall, failover_tries=1, **update))


def old_pod(r: Round, pod: Pod) -> Decision:
    """A pod to restart is still the old one: the eviction was lost (or refused meanwhile): again."""
    return wait(
        f"{r.move.pod} is still the old pod ({pod.state})", actions=(Evict(r.move.pod, str(r.state.uid)),)
    )


def came_back(r: Round) -> Pod | Decision:
    """a_restart, restart: the moved pod as it came back, or what to do while it has not."""
    pod = r.survey.pod(r.move.pod)
    if pod is not None and pod.uid == r.state.uid:
        return old_pod(r, pod)
    if pod is None or pod.addr is None:
        return wait(f"{r.move.pod} is {state_of(pod)}")
    if r.survey.tainted(pod.node):
        return Abort(RedisSwitchoverError(f"{r.move.ref} came back on old node {pod.node}"))
    node_id = r.survey.myid(r.move.pod)
    if r.state.node_id and node_id != r.state.node_id:
        return Abort(
            RedisSwitchoverError(
                f"{r.move.ref} came back as node {short(node_id)}, not {short(r.state.node_id)}: its nodes.conf is gone"
            )
        )
    return pod


def fix_own_view(r: Round, pod: Pod, addrs: dict[str, Addr], by: str, who: str) -> Decision | None:
    """redis/redis#4645: a moved node keeps its old IP in its own view; a MEET from `by` fixes it."""
    stale = stale_self(myself(r.survey.nodes(r.move.pod)), str(pod.ip))
    if stale is None:
        return None
    return wait(
        f"{r.move.pod}'s own view to show {pod.ip}",
        actions=(Meet(by, str(pod.ip), pod.port),),
        notes=(f"{r.move.pod}'s own view still had its old IP {stale}: CLUSTER MEET {pod.ip} from {who}",),
    )


def states_not_ok(r: Round, names: Iterable[str]) -> list[str]:
    return [f"{n}: cluster_state:{s}" for n in sorted(names) if (s := r.survey.cluster_state(n)) != "ok"]


def total_s(r: Round) -> float:
    return (r.now - datetime.fromisoformat(r.state.started)).total_seconds() if r.state.started else 0.0


def start(r: Round) -> Decision:
    m, st, sv = r.move, r.state, r.survey
    pod = sv.pod(m.pod)
    if pod is None or pod.uid != st.uid or pod.terminating:
        # Deleted since discovery (by an earlier attempt of this phase, or by someone else):
        # whatever it was, it must come back healthy before this node is drained.
        return Act(
            "restart",
            notes=(f"{m.pod} was already deleted or replaced; waiting for it to come back healthy",),
            state=st.go(kind=st.kind or "unknown"),
        )
    if pod.node != st.node:
        return Act("done", notes=(f"{m.pod} is no longer on {st.node}: nothing to move",))
    problems, _ = health(sv, m.namespace, r.run, own_temp=temp_name(m.pod))
    if problems:
        return wait("; ".join(problems), error=RedisGroupUnhealthyError)
    me = myself(sv.nodes(m.pod))
    if me is None:
        return wait(f"{m.pod} has no myself entry", error=RedisGroupUnhealthyError)
    path, kind = start_path(me)
    started = r.now.isoformat()
    if path == "restart":
        # A replica (or an empty master): nothing is served from it, evict and await it.
        return Act(
            "restart",
            (Evict(m.pod, st.uid),),
            (
                f"{m.pod} ({short(me.id)}) is a {kind}"
                + (f" of {short(me.master_id)}" if me.master_id else "")
                + f"; evicted the pod (uid {st.uid}) so it is rescheduled on a new node in its zone",
            ),
            st.go(kind=kind, node_id=me.id, started=started),
        )
    zone = sv.zone(str(pod.node))
    if not zone:
        return Abort(RedisTempNodeError(f"node {pod.node} of {m.ref} has no {ZONE_LABEL} label"))
    slots, temp = norm(me.slots), temp_name(m.pod)
    return Act(
        "temp_start",
        (CreateTemp(m.pod, m.statefulset, temp, me.id, tuple(slots), zone),),
        (f"{m.pod} ({short(me.id)}) is master of slots {ranges_text(slots)}",),
        st.go(
            kind="master",
            node_id=me.id,
            slots=[list(s) for s in slots],
            zone=zone,
            temp=temp,
            started=started,
        ),
    )


# --- the master path ---------------------------------------------------------------------------
def temp_start(r: Round) -> Decision:
    m, st, sv = r.move, r.state, r.survey
    tp = sv.temp
    if tp is None:
        return wait(
            "temp pod",
            actions=(
                CreateTemp(m.pod, m.statefulset, r.temp, str(st.node_id), tuple(r.slots), str(st.zone)),
            ),
            notes=(f"temporary pod {r.temp} was missing: created it again",),
        )
    if tp.addr is None:
        return wait(f"temporary pod {r.temp} is {tp.state}")
    if sv.tainted(tp.node):
        return Abort(RedisTempNodeError(f"temporary pod {m.namespace}/{r.temp} landed on old node {tp.node}"))
    a_pod = sv.pod(m.pod)
    if a_pod is None or a_pod.addr is None or a_pod.uid != st.uid:
        return Abort(
            RedisSwitchoverError(f"{m.ref} went away ({state_of(a_pod)}) before its temporary node joined")
        )
    temp_id = sv.myid(r.temp)
    known = {(e.ip, e.port) for e in sv.nodes(r.temp) if not e.myself}
    # One MEET would do, but gossip then takes seconds to reach every node; a MEET to each
    # running group pod converges in a few hundred milliseconds.
    peers = peers_to_meet(a_pod.addr, sv.addrs().values())
    return Act(
        "temp_join",
        (
            # T is ours: it must not wander to another shard (replica migration, anchors 2.4)
            # nor be promoted automatically while it is still a replica of A.
            Configure(r.temp, "cluster-allow-replica-migration", "no"),
            Configure(r.temp, "cluster-replica-no-failover", "yes"),
            *(Meet(r.temp, *peer) for peer in peers if peer not in known),
        ),
        (
            f"temporary pod {r.temp} Ready on new node {tp.node} ({st.zone}) at {tp.ip}, node id {short(temp_id)}; "
            f"CLUSTER MEET {a_pod.ip} {a_pod.port} (and the {len(peers) - 1} other nodes) from it",
        ),
        st.go(temp_id=temp_id, temp_ip=tp.ip, temp_node=tp.node),
    )


def temp_join(r: Round) -> Decision:
    st = r.state
    addrs, views, pending = survey_all(r)
    if pending:
        return wait(pending)
    if stop := a_still_master(r, views):
        return stop
    if unaware := unaware_of(views, str(st.temp_id)):
        return wait(unaware)
    me = myself(views[r.temp])
    follows = me is not None and me.master_id == st.node_id
    return Act(
        "temp_sync",
        (*(() if follows else (Replicate(r.temp, str(st.node_id)),)), Announce(r.temp, tuple(addrs))),
        (f"all {len(views)} nodes know {short(st.temp_id)}; CLUSTER REPLICATE {short(st.node_id)} on it",),
        st.go(),
    )


def temp_sync(r: Round) -> Decision:
    m, st, sv = r.move, r.state, r.survey
    addrs, views, pending = survey_all(r)
    if pending:
        return wait(pending)
    if took_over(views, r.temp, r.slots):
        # An earlier attempt of this phase sent the failover and it took effect: verify it.
        return failed_over(
            r,
            "failover_to_temp",
            notes=("the failover sent by an earlier attempt of this phase took effect",),
        )
    if stop := a_still_master(r, views):
        return stop
    t_me = myself(views[r.temp])
    if t_me is None or t_me.master_id != st.node_id:
        return Abort(
            RedisSwitchoverError(
                f"temporary node {short(st.temp_id)} no longer replicates {short(st.node_id)} "
                f"({'unknown' if t_me is None else short(t_me.master_id)})"
            )
        )
    synced, detail = sv.sync(r.temp, m.pod)
    if not synced:
        return wait(f"temporary node not synced from {m.pod}: {detail}")
    if unlisted := not_listed(views, str(st.temp_id), str(st.node_id)):
        why = f"masters {', '.join(unlisted)} do not list the temporary node as replica of {m.pod} yet"
        return lagging(r, why, views, addrs)
    masters = [n for n, es in views.items() if (me := myself(es)) is not None and me.is_master and me.slots]
    return failed_over(
        r,
        "failover_to_temp",
        actions=(Failover(r.temp),),
        notes=(
            f"temporary node synced ({detail}) and listed as replica of {m.pod} by all {len(masters)} masters; "
            "CLUSTER FAILOVER on it",
        ),
    )


def retry_failover(
    r: Round, who: str, label: str, why: str, views: Views, addrs: dict[str, Addr]
) -> Decision:
    """The roles do not agree yet: re-issue a failover that gave up, or keep waiting."""
    state, announce = nudge(r, views, addrs)
    tries = int(r.state.failover_tries or 1)
    verdict = retry(r.wall, float(r.state.failover_at or 0.0), tries)
    if verdict == "wait" or r.survey.role(who) == "master":
        return wait(why, state=state, actions=announce)  # a master now: the others agree shortly
    if verdict == "give-up":
        error = RedisSwitchoverError(
            f"CLUSTER FAILOVER on {label} did not take effect after {FAILOVER_ATTEMPTS} attempts: {why}"
        )
        return Abort(error, announce)
    return wait(
        why,
        state=state.model_copy(update={"failover_at": r.wall, "failover_tries": tries + 1}),
        actions=(*announce, Failover(who)),
        notes=(
            f"failover to {label} had not happened ({why}): CLUSTER FAILOVER again (attempt {tries + 1})",
        ),
    )


def failover_to_temp(r: Round) -> Decision:
    m, st = r.move, r.state
    a_pod = r.survey.pod(m.pod)
    if a_pod is None or a_pod.uid != st.uid or a_pod.terminating:
        # Only this phase deletes A, once the roles were verified: an earlier attempt did.
        return Act("a_restart", notes=(f"{m.pod} was deleted by an earlier attempt",), state=st.go())
    addrs, views, pending = survey_all(r)
    if pending:
        return wait(pending)
    why = roles_agree(views, str(st.temp_id), str(st.node_id), r.slots, replica_may_be_gone=False)
    if why is None and (r.survey.role(r.temp) != "master" or r.survey.role(m.pod) != "slave"):
        why = "ROLE of the temporary node and of A not switched yet"
    if why is not None:
        return retry_failover(r, r.temp, "the temporary node", why, views, addrs)
    took = r.wall - float(st.failover_at or r.wall)
    # Evicted only now: the temporary node serves A's slots meanwhile (a refusal waits; past
    # the deadline the abort fails back).
    return Act(
        "a_restart",
        (Evict(m.pod, str(st.uid)),),
        (
            f"failover verified on all {len(views)} nodes {took:.2f}s after the command: "
            f"{short(st.temp_id)} master of {ranges_text(r.slots)}, {m.pod} its replica; "
            f"evicted pod {m.pod} (uid {st.uid})",
        ),
        st.go(failover_to_temp_s=round(took, 3)),
    )


def a_restart(r: Round) -> Decision:
    m, st, sv = r.move, r.state, r.survey
    pod = came_back(r)
    if not isinstance(pod, Pod):
        return pod
    addrs, views, pending = survey_all(r)
    if pending:
        return wait(pending)
    if fix := fix_own_view(r, pod, addrs, r.temp, "the temporary node"):
        return fix
    if stale := not_announced(views, str(st.node_id), str(pod.ip)):
        return wait(f"{', '.join(stale)} do not show {m.pod} at {pod.ip} yet")
    back: dict[str, Any] = {"new_ip": pod.ip, "new_node": pod.node}
    mine = myself(views[m.pod])
    if mine is not None and mine.is_master and norm(mine.slots) == r.slots:
        # An earlier attempt of this phase sent the failback and it took effect: verify it.
        return failed_over(
            r,
            "failover_to_a",
            notes=("the failback sent by an earlier attempt of this phase took effect",),
            **back,
        )
    if mine is None or mine.master_id != st.temp_id:
        flags = "?" if mine is None else ",".join(sorted(mine.flags))
        return Abort(
            RedisSwitchoverError(f"{m.ref} came back but does not replicate the temporary node ({flags})")
        )
    synced, detail = sv.sync(m.pod, r.temp)
    if not synced:
        return wait(f"{m.pod} not synced from the temporary node: {detail}")
    return failed_over(
        r,
        "failover_to_a",
        actions=(Failover(m.pod),),
        notes=(
            f"{m.pod} back on new node {pod.node} at {pod.ip} with node id {short(st.node_id)}, "
            f"announced there by all {len(views)} nodes, synced ({detail}); CLUSTER FAILOVER on {m.pod}",
        ),
        **back,
    )


def failover_to_a(r: Round) -> Decision:
    m, st = r.move, r.state
    tp = r.survey.temp
    if tp is None or tp.terminating:
        # Only this phase deletes T, after the FORGETs: an earlier attempt did.
        return Act("temp_remove", notes=(f"{r.temp} was deleted by an earlier attempt",), state=st.go())
    addrs, views, pending = survey_all(r)
    if pending:
        return wait(pending)
    # T may already be forgotten by some nodes if an earlier attempt of this phase got that far.
    why = failback_pending(views, str(st.node_id), str(st.temp_id), r.temp, r.slots)
    if why is not None:
        return retry_failover(r, m.pod, m.pod, why, views, addrs)
    took = r.wall - float(st.failover_at or r.wall)
    return Act(
        "temp_remove",
        (Forget(tuple(n for n in addrs if n != r.temp), str(st.temp_id)), DeleteTemp(r.temp)),
        (
            f"failback verified on all {len(views)} nodes {took:.2f}s after the command: {m.pod} master of "
            f"{ranges_text(r.slots)} again",
        ),
        st.go(failback_s=round(took, 3)),
    )


def temp_remove(r: Round) -> Decision:
    m, st = r.move, r.state
    tp = r.survey.temp
    if tp is not None:
        gone = () if tp.terminating else (DeleteTemp(r.temp),)
        return wait(f"temporary pod {r.temp} is {tp.state}", actions=gone)
    addrs, views, pending = survey_all(r, with_temp=False)
    if pending:
        return wait(pending)
    if remembering_ := remembering(views, str(st.temp_id)):
        # Within the ban window only a node that missed the FORGET can still list it.
        return wait(
            "every node to forget the temporary node",
            actions=(Forget(tuple(remembering_), str(st.temp_id)),),
            notes=(f"{', '.join(remembering_)} still listed the temporary node: forgetting it again",),
        )
    if st.temp_ip and (shaking := shaking_hands(views, st.temp_ip)):
        return wait(f"{', '.join(shaking)} still shake hands with the temporary node's address {st.temp_ip}")
    problems = cluster_problems(views, {}, None) + states_not_ok(r, addrs)
    why = roles_agree(views, str(st.node_id), str(st.temp_id), r.slots, replica_may_be_gone=True)
    if problems or why:
        return lagging(r, "; ".join(problems + ([why] if why else [])), views, addrs)
    total = total_s(r)
    return Act(
        "done",
        notes=(
            f"temporary node gone from all {len(views)} nodes; cluster_state:ok and 16384 slots covered everywhere; "
            f"{m.pod} master of {ranges_text(r.slots)} on {st.new_node} at {st.new_ip} ({total:.1f}s in all)",
        ),
        state=st.go(total_s=round(total, 1)),
    )


# --- the replica path (and any pod found already deleted) ----------------------------------------
def restart(r: Round) -> Decision:
    m, sv = r.move, r.survey
    pod = came_back(r)
    if not isinstance(pod, Pod):
        return pod
    addrs, views, pending = survey_all(r, with_temp=False)
    if pending:
        return wait(pending)
    peer = next((n for n in addrs if n != m.pod), None)
    if peer is not None and (fix := fix_own_view(r, pod, addrs, peer, "a peer")):
        return fix
    node_id = sv.myid(m.pod)
    if stale := not_announced(views, node_id, str(pod.ip)):
        return wait("; ".join(f"{n} does not show {m.pod} at {pod.ip}" for n in stale))
    detail = "master"
    me = myself(views[m.pod])
    if me is not None and me.is_replica:
        master = next(
            (n for n, es in views.items() if (e := myself(es)) is not None and e.id == me.master_id), None
        )
        if master is None:
            return wait(f"the master {short(me.master_id)} of {m.pod} is not a running group pod")
        synced, detail = sv.sync(m.pod, master)
        if not synced:
            return wait(f"{m.pod} not synced: {detail}")
    problems = cluster_problems(views, {}, None) + states_not_ok(r, addrs)
    if problems:
        return lagging(r, "; ".join(problems), views, addrs)
    total = total_s(r)
    return Act(
        "done",
        notes=(
            f"{m.pod} back on new node {pod.node} at {pod.ip} with node id {short(node_id)}, "
            f"announced there by all {len(views)} nodes, {detail}; cluster_state:ok everywhere ({total:.1f}s in all)",
        ),
        state=r.state.go(new_ip=pod.ip, new_node=pod.node, total_s=round(total, 1)),
    )


PHASES: dict[str, Callable[[Round], Decision]] = {
    "start": start,
    "restart": restart,
    "temp_start": temp_start,
    "temp_join": temp_join,
    "temp_sync": temp_sync,
    "failover_to_temp": failover_to_temp,
    "a_restart": a_restart,
    "failover_to_a": failover_to_a,
    "temp_remove": temp_remove,
}
