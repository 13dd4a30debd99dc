"""ClusterProcedure: one phase of one move per round (the phases are in the package
docstring); every phase re-reads the cluster before it acts and each act is safe to repeat."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ....errors import (
    DrainTimeoutError,
    PermanentError,
    RedisGroupUnhealthyError,
    RedisMoveTimeoutError,
    RedisSwitchoverError,
    RedisTempNodeError,
)
from ....models import RedisMove
from ....redis.cluster import RedisError, ranges_text
from ..procedure import Advance, GroupHealth, RedisEnv
from . import decide
from .act import announce, ensure_temp, forget_everywhere, nudge
from .cleanup import abort, cleanup_temps
from .model import ClusterMoveState
from .survey import (
    FAILOVER_ATTEMPTS,
    FOR_POD_ANNOTATION,
    GROUP_LABEL,
    RUN_LABEL,
    TEMP_FOR_LABEL,
    ZONE_LABEL,
    Addr,
    Views,
    addr_of,
    admin,
    cluster_problems,
    label_safe,
    look,
    members_of,
    move_slots,
    myself,
    norm,
    pod_state,
    roles_agree,
    running,
    short,
    sync_gap,
    tainted,
    temp_name,
)

log = logging.getLogger(__name__)


@dataclass
class _Step:
    move: RedisMove
    actions: list[str] = field(default_factory=list)
    pending: str | None = None  # what is still awaited; None once the phase moved on
    on_timeout: type[PermanentError] = RedisMoveTimeoutError
    wait_s: int = 1


class ClusterProcedure:
    kind = "cluster"

    def order(self, move: RedisMove) -> int:
        # Roles are read live (a replica may have become master since discovery): one order.
        return 0

    # --- plan ----------------------------------------------------------------------------------
    def health(self, env: RedisEnv) -> GroupHealth:
        problems, masters = self._health(env)
        return GroupHealth(problems=problems, master_pods=masters)

    def _health(self, env: RedisEnv, own_temp: str | None = None) -> tuple[list[str], list[str]]:
        members = members_of(env)
        problems = [
            f"pod {env.group.namespace}/{n} is {pod_state(p)}" for n, p in members.items() if not running(p)
        ]
        addrs = {n: ad for n, p in members.items() if (ad := addr_of(p))}
        views, errors = look(env, addrs)
        ids: set[str] = set()
        masters: list[str] = []
        for name, entries in views.items():
            me = myself(entries)
            if me is not None:
                ids.add(me.id)
                if me.is_master and me.slots:
                    masters.append(name)
        for name, addr in addrs.items():
            if name in views:
                try:
                    with admin(env, addr) as a:
                        state = a.info().get("cluster_state")
                except (RedisError, OSError) as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                if state != "ok":
                    problems.append(f"{name}: cluster_state:{state}")
        problems += cluster_problems(views, errors, ids if not errors and len(ids) == len(members) else None)
        if not masters and not problems:
            problems.append("no node holds slots")
        for tp in env.kube.list_pods(
            env.group.namespace, f"{TEMP_FOR_LABEL},{GROUP_LABEL}={label_safe(env.group.name)}"
        ):
            run = (tp.metadata.labels or {}).get(RUN_LABEL, "?")
            if tp.metadata.name == own_temp and run == env.ctx.taint_value:
                continue  # created by an earlier attempt of this very phase
            problems.append(
                f"temporary pod {tp.metadata.name} of run {run} is still there: fail back to "
                f"{(tp.metadata.annotations or {}).get(FOR_POD_ANNOTATION, '?')} if it is master, CLUSTER FORGET it on every node, delete it"
            )
        return sorted(set(problems)), sorted(masters)

    # --- one round -----------------------------------------------------------------------------
    def advance(self, move: RedisMove, env: RedisEnv) -> Advance:
        phases = {
            "start": self._start,
            "restart": self._restart,
            "temp_start": self._temp_start,
            "temp_join": self._temp_join,
            "temp_sync": self._temp_sync,
            "failover_to_temp": self._failover_to_temp,
            "a_restart": self._a_restart,
            "failover_to_a": self._failover_to_a,
            "temp_remove": self._temp_remove,
        }
        ClusterMoveState.model_validate(move.data)  # a bad state stops here, named
        try:
            try:
                step = phases[move.phase](move, env)
            except (RedisError, OSError) as exc:
                # A node restarting or briefly unreachable: the phase re-reads everything (and
                # only acts again where its guards allow) next round, until its deadline.
                step = _Step(move, pending=f"a node did not answer ({type(exc).__name__}: {exc})")
            if step.pending is not None and move.phase_deadline is not None and env.now > move.phase_deadline:
                raise step.on_timeout(
                    f"Redis Cluster pod {move.ref}: phase {move.phase} did not complete by "
                    f"{move.phase_deadline.isoformat()}: {step.pending}"
                )
        except (
            DrainTimeoutError,
            RedisMoveTimeoutError,
            RedisSwitchoverError,
            RedisGroupUnhealthyError,
            RedisTempNodeError,
        ) as exc:
            notes = abort(move, env)
            raise type(exc)(f"{exc} | cleanup: {'; '.join(notes) or 'nothing to clean up'}") from exc
        out = step.move
        if step.pending is not None:
            log.info("redis cluster %s at %s: waiting for %s", move.ref, move.phase, step.pending)
        if not out.done and out.data.get("waiting") != step.pending:
            # What this phase waits for, in the execution history (for people, bounded).
            waiting = None if step.pending is None else step.pending[:300]
            out = out.model_copy(update={"data": {**out.data, "waiting": waiting}})
        return Advance(out, step.actions, wait_s=step.wait_s)

    @staticmethod
    def _to(move: RedisMove, env: RedisEnv, phase: str, **data: Any) -> RedisMove:
        kept = {k: v for k, v in move.data.items() if k != "throttled"}  # 429s counted per phase
        data = {**kept, "announced": [], "waiting": None, **data}
        return move.model_copy(update={"phase": phase, "phase_deadline": env.deadline(), "data": data})

    @staticmethod
    def _refused(move: RedisMove, env: RedisEnv, blocked: str) -> _Step:
        """A PDB refused the eviction: wait with the drain's backoff; past the phase's deadline
        DrainTimeoutError names the PDB."""
        move, wait_s = env.refused(move)
        return _Step(move, pending=blocked, on_timeout=DrainTimeoutError, wait_s=wait_s)

    @staticmethod
    def _done(move: RedisMove, **data: Any) -> RedisMove:
        return move.model_copy(
            update={"phase": "done", "phase_deadline": None, "done": True, "data": {**move.data, **data}}
        )

    # --- start: which role, then the replica or the master path -------------------------------
    def _start(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        if move.phase_deadline is None:
            move = move.model_copy(update={"phase_deadline": env.deadline()})
        pod = env.kube.get_pod(ns, move.pod)
        if pod is None or pod.metadata.uid != d["uid"] or pod.metadata.deletion_timestamp is not None:
            # Deleted since discovery (by an earlier attempt of this phase, or by someone else):
            # whatever it was, it must come back healthy before this node is drained.
            return _Step(
                self._to(move, env, "restart", kind=d.get("kind", "unknown")),
                [f"{move.pod} was already deleted or replaced; waiting for it to come back healthy"],
            )
        if pod.spec.node_name != d.get("node"):
            return _Step(self._done(move), [f"{move.pod} is no longer on {d.get('node')}: nothing to move"])
        problems, _ = self._health(env, own_temp=temp_name(move.pod))
        if problems:
            return _Step(move, pending="; ".join(problems), on_timeout=RedisGroupUnhealthyError)
        addr = addr_of(pod)
        assert addr is not None  # _health found every pod running
        with admin(env, addr) as a:
            me = myself(a.nodes())
        if me is None:
            return _Step(move, pending=f"{move.pod} has no myself entry", on_timeout=RedisGroupUnhealthyError)
        path, kind = decide.start_path(me)
        if path == "restart":
            # A replica (or an empty master): nothing is served from it, evict and await it.
            if blocked := env.evict(move.pod, d["uid"]):
                return self._refused(move, env, blocked)
            return _Step(
                self._to(move, env, "restart", kind=kind, node_id=me.id, started=env.now.isoformat()),
                [
                    f"{move.pod} ({short(me.id)}) is a {kind}"
                    + (f" of {short(me.master_id)}" if me.master_id else "")
                    + f"; evicted the pod (uid {d['uid']}) so it is rescheduled on a new node in its zone"
                ],
            )
        node = env.kube.get_node(pod.spec.node_name)
        zone = ((node.metadata.labels or {}) if node is not None else {}).get(ZONE_LABEL)
        if not zone:
            raise RedisTempNodeError(f"node {pod.spec.node_name} of {move.ref} has no {ZONE_LABEL} label")
        slots = norm(me.slots)
        temp = temp_name(move.pod)
        move = self._to(
            move,
            env,
            "temp_start",
            kind="master",
            node_id=me.id,
            slots=[list(r) for r in slots],
            zone=zone,
            temp=temp,
            started=env.now.isoformat(),
        )
        created = ensure_temp(move, env)
        return _Step(
            move,
            [
                f"{move.pod} ({short(me.id)}) is master of slots {ranges_text(slots)}; "
                + ("created" if created else "found")
                + f" temporary pod {temp} from StatefulSet {move.statefulset}'s template in {zone}"
            ],
        )

    # --- the master path -------------------------------------------------------------------------
    def _temp_start(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        tp = env.kube.get_pod(ns, d["temp"])
        if tp is None:
            ensure_temp(move, env)
            return _Step(
                move, [f"temporary pod {d['temp']} was missing: created it again"], pending="temp pod"
            )
        if not running(tp):
            return _Step(move, pending=f"temporary pod {d['temp']} is {pod_state(tp)}")
        if tainted(env, tp.spec.node_name):
            raise RedisTempNodeError(f"temporary pod {ns}/{d['temp']} landed on old node {tp.spec.node_name}")
        a_pod = env.kube.get_pod(ns, move.pod)
        a_addr = addr_of(a_pod)
        if a_pod is None or a_addr is None or a_pod.metadata.uid != d["uid"]:
            raise RedisSwitchoverError(
                f"{move.ref} went away ({pod_state(a_pod)}) before its temporary node joined"
            )
        t_addr = addr_of(tp)
        assert t_addr is not None
        with admin(env, t_addr) as t:
            temp_id = t.myid()
            # T is ours: it must not wander to another shard (replica migration, anchors 2.4)
            # nor be promoted automatically while it is still a replica of A.
            t.config_set("cluster-allow-replica-migration", "no")
            t.config_set("cluster-replica-no-failover", "yes")
            known = {(e.ip, e.port) for e in t.nodes() if not e.myself}
            # One MEET would do, but gossip then takes seconds to reach every node; a MEET to
            # each running group pod converges in a few hundred milliseconds.
            peers = decide.peers_to_meet(a_addr, [ad for p in members_of(env).values() if (ad := addr_of(p))])
            for peer in peers:
                if peer not in known:
                    t.meet(*peer)
        return _Step(
            self._to(move, env, "temp_join", temp_id=temp_id, temp_ip=t_addr[0], temp_node=tp.spec.node_name),
            [
                f"temporary pod {d['temp']} Ready on new node {tp.spec.node_name} ({d['zone']}) at {t_addr[0]}, "
                f"node id {short(temp_id)}; CLUSTER MEET {a_addr[0]} {a_addr[1]} (and the {len(peers) - 1} other nodes) from it"
            ],
        )

    def _every_node(
        self, env: RedisEnv, move: RedisMove, *, with_temp: bool = True
    ) -> tuple[dict[str, Addr], str | None]:
        """Addresses of every group pod (and T): (addresses, what is not running)."""
        members = members_of(env)
        down = [f"{n} is {pod_state(p)}" for n, p in members.items() if not running(p)]
        addrs = {n: ad for n, p in members.items() if (ad := addr_of(p))}
        if with_temp:
            tp = env.kube.get_pod(env.group.namespace, move.data["temp"])
            t_addr = addr_of(tp)
            if t_addr is None:
                down.append(f"temporary pod {move.data['temp']} is {pod_state(tp)}")
            else:
                addrs[move.data["temp"]] = t_addr
        return addrs, "; ".join(down) or None

    def _survey(
        self, env: RedisEnv, move: RedisMove, *, with_temp: bool = True
    ) -> tuple[dict[str, Addr], Views, str | None]:
        """Every node's CLUSTER NODES view: (addresses, views, why not yet: a pod not running
        or a node not answering)."""
        addrs, down = self._every_node(env, move, with_temp=with_temp)
        if down:
            return addrs, {}, down
        views, errors = look(env, addrs)
        return addrs, views, "; ".join(f"{n}: {e}" for n, e in errors.items()) or None

    def _check_a_master(self, views: Views, move: RedisMove) -> None:
        me = myself(views.get(move.pod, []))
        if me is not None and not (me.is_master and norm(me.slots) == move_slots(move.data)):
            raise RedisSwitchoverError(
                f"{move.ref} is no longer master of {ranges_text(move.data['slots'])} "
                f"({','.join(sorted(me.flags))}, slots {ranges_text(me.slots)}) before the planned failover"
            )

    def _temp_join(self, move: RedisMove, env: RedisEnv) -> _Step:
        d = move.data
        addrs, views, pending = self._survey(env, move)
        if pending:
            return _Step(move, pending=pending)
        self._check_a_master(views, move)
        if unaware := decide.unaware_of(views, d["temp_id"]):
            return _Step(move, pending=unaware)
        with admin(env, addrs[d["temp"]]) as t:
            me = myself(t.nodes())
            if me is None or me.master_id != d["node_id"]:
                t.replicate(d["node_id"])
        announce(env, addrs, d["temp"])
        return _Step(
            self._to(move, env, "temp_sync"),
            [
                f"all {len(views)} nodes know {short(d['temp_id'])}; CLUSTER REPLICATE {short(d['node_id'])} on it"
            ],
        )

    def _temp_sync(self, move: RedisMove, env: RedisEnv) -> _Step:
        d = move.data
        addrs, views, pending = self._survey(env, move)
        if pending:
            return _Step(move, pending=pending)
        if decide.took_over(views, d["temp"], move_slots(d)):
            # An earlier attempt of this phase sent the failover and it took effect: verify it.
            return _Step(
                self._to(
                    move, env, "failover_to_temp", failover_at=env.deps.now().timestamp(), failover_tries=1
                ),
                ["the failover sent by an earlier attempt of this phase took effect"],
            )
        self._check_a_master(views, move)
        t_me = myself(views[d["temp"]])
        if t_me is None or t_me.master_id != d["node_id"]:
            raise RedisSwitchoverError(
                f"temporary node {short(d['temp_id'])} no longer replicates {short(d['node_id'])} "
                f"({'unknown' if t_me is None else short(t_me.master_id)})"
            )
        synced, detail = sync_gap(env, addrs[d["temp"]], addrs[move.pod])
        if not synced:
            return _Step(move, pending=f"temporary node not synced from {move.pod}: {detail}")
        masters = [
            n for n, es in views.items() if (me := myself(es)) is not None and me.is_master and me.slots
        ]
        if unlisted := decide.not_listed(views, d["temp_id"], d["node_id"]):
            return _Step(
                nudge(env, move, addrs, views),
                pending=f"masters {', '.join(unlisted)} do not list the temporary node as replica of {move.pod} yet",
            )
        with admin(env, addrs[d["temp"]]) as t:
            if t.role() != "master":
                t.failover()
        return _Step(
            self._to(move, env, "failover_to_temp", failover_at=env.deps.now().timestamp(), failover_tries=1),
            [
                f"temporary node synced ({detail}) and listed as replica of {move.pod} by all {len(masters)} masters; "
                "CLUSTER FAILOVER on it"
            ],
        )

    def _retry_failover(self, move: RedisMove, env: RedisEnv, addr: Addr, who: str, why: str) -> _Step:
        """The roles do not agree yet: re-issue a failover that gave up, or keep waiting."""
        d = move.data
        verdict = decide.retry(env.deps.now().timestamp(), float(d["failover_at"]), int(d["failover_tries"]))
        if verdict == "wait":
            return _Step(move, pending=why)
        with admin(env, addr) as n:
            if n.role() == "master":
                return _Step(move, pending=why)  # it did take over: the others will agree shortly
            if verdict == "give-up":
                raise RedisSwitchoverError(
                    f"CLUSTER FAILOVER on {who} did not take effect after {FAILOVER_ATTEMPTS} attempts: {why}"
                )
            n.failover()
        tries = int(d["failover_tries"]) + 1
        return _Step(
            move.model_copy(
                update={"data": {**d, "failover_at": env.deps.now().timestamp(), "failover_tries": tries}}
            ),
            [f"failover to {who} had not happened ({why}): CLUSTER FAILOVER again (attempt {tries})"],
            pending=why,
        )

    def _failover_to_temp(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        slots = move_slots(d)
        a_pod = env.kube.get_pod(ns, move.pod)
        if a_pod is None or a_pod.metadata.uid != d["uid"] or a_pod.metadata.deletion_timestamp is not None:
            # Only this phase deletes A, once the roles were verified: an earlier attempt did.
            return _Step(self._to(move, env, "a_restart"), [f"{move.pod} was deleted by an earlier attempt"])
        addrs, views, pending = self._survey(env, move)
        if pending:
            return _Step(move, pending=pending)
        why = roles_agree(views, d["temp_id"], d["node_id"], slots, replica_may_be_gone=False)
        if why is None:
            with admin(env, addrs[d["temp"]]) as t, admin(env, addrs[move.pod]) as a:
                if t.role() != "master" or a.role() != "slave":
                    why = "ROLE of the temporary node and of A not switched yet"
        if why is not None:
            move = nudge(env, move, addrs, views)
            return self._retry_failover(move, env, addrs[d["temp"]], "the temporary node", why)
        took = env.deps.now().timestamp() - float(d["failover_at"])
        if blocked := env.evict(move.pod, d["uid"]):
            # The temporary node serves A's slots meanwhile; past the deadline the abort fails back.
            return self._refused(move, env, blocked)
        return _Step(
            self._to(move, env, "a_restart", failover_to_temp_s=round(took, 3)),
            [
                f"failover verified on all {len(views)} nodes {took:.2f}s after the command: "
                f"{short(d['temp_id'])} master of {ranges_text(slots)}, {move.pod} its replica; "
                f"evicted pod {move.pod} (uid {d['uid']})"
            ],
        )

    def _a_restart(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        pod = env.kube.get_pod(ns, move.pod)
        if pod is not None and pod.metadata.uid == d["uid"]:
            # The eviction was lost (or refused meanwhile): again.
            if blocked := env.evict(move.pod, d["uid"]):
                return self._refused(move, env, blocked)
            return _Step(move, pending=f"{move.pod} is still the old pod ({pod_state(pod)})")
        a_addr = addr_of(pod)
        if pod is None or a_addr is None:
            return _Step(move, pending=f"{move.pod} is {pod_state(pod)}")
        if tainted(env, pod.spec.node_name):
            raise RedisSwitchoverError(f"{move.ref} came back on old node {pod.spec.node_name}")
        actions: list[str] = []
        with admin(env, a_addr) as a:
            node_id = a.myid()
            if node_id != d["node_id"]:
                raise RedisSwitchoverError(
                    f"{move.ref} came back as node {short(node_id)}, not {short(d['node_id'])}: its nodes.conf is gone"
                )
            me = myself(a.nodes())
        addrs, down = self._every_node(env, move)
        if down:
            return _Step(move, pending=down)
        if me is not None and me.ip != a_addr[0]:
            # redis/redis#4645: a moved node keeps its old IP in its own view; a MEET fixes it.
            with admin(env, addrs[d["temp"]]) as t:
                t.meet(*a_addr)
            actions.append(
                f"{move.pod}'s own view still had its old IP {me.ip}: CLUSTER MEET {a_addr[0]} from the temporary node"
            )
            return _Step(move, actions, pending=f"{move.pod}'s own view to show {a_addr[0]}")
        views, errors = look(env, addrs)
        if errors:
            return _Step(move, pending="; ".join(f"{n}: {e}" for n, e in errors.items()))
        stale = decide.not_announced(views, node_id, a_addr[0])
        if stale:
            return _Step(
                move, pending=f"{', '.join(sorted(stale))} do not show {move.pod} at {a_addr[0]} yet"
            )
        mine = myself(views[move.pod])
        if mine is not None and mine.is_master and norm(mine.slots) == move_slots(d):
            # An earlier attempt of this phase sent the failback and it took effect: verify it.
            return _Step(
                self._to(
                    move,
                    env,
                    "failover_to_a",
                    failover_at=env.deps.now().timestamp(),
                    failover_tries=1,
                    new_ip=a_addr[0],
                    new_node=pod.spec.node_name,
                ),
                ["the failback sent by an earlier attempt of this phase took effect"],
            )
        if mine is None or mine.master_id != d["temp_id"]:
            raise RedisSwitchoverError(
                f"{move.ref} came back but does not replicate the temporary node ({'?' if mine is None else ','.join(sorted(mine.flags))})"
            )
        synced, detail = sync_gap(env, a_addr, addrs[d["temp"]])
        if not synced:
            return _Step(move, pending=f"{move.pod} not synced from the temporary node: {detail}")
        with admin(env, a_addr) as a:
            if a.role() != "master":
                a.failover()
        return _Step(
            self._to(
                move,
                env,
                "failover_to_a",
                failover_at=env.deps.now().timestamp(),
                failover_tries=1,
                new_ip=a_addr[0],
                new_node=pod.spec.node_name,
            ),
            [
                *actions,
                f"{move.pod} back on new node {pod.spec.node_name} at {a_addr[0]} with node id {short(node_id)}, "
                f"announced there by all {len(views)} nodes, synced ({detail}); CLUSTER FAILOVER on {move.pod}",
            ],
        )

    def _failover_to_a(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        slots = move_slots(d)
        tp = env.kube.get_pod(ns, d["temp"])
        if tp is None or tp.metadata.deletion_timestamp is not None:
            # Only this phase deletes T, after the FORGETs: an earlier attempt did.
            return _Step(
                self._to(move, env, "temp_remove"), [f"{d['temp']} was deleted by an earlier attempt"]
            )
        addrs, views, pending = self._survey(env, move)
        if pending:
            return _Step(move, pending=pending)
        # T may already be forgotten by some nodes if an earlier attempt of this phase got that far.
        why = decide.failback_pending(views, d["node_id"], d["temp_id"], d["temp"], slots)
        if why is not None:
            move = nudge(env, move, addrs, views)
            return self._retry_failover(move, env, addrs[move.pod], move.pod, why)
        took = env.deps.now().timestamp() - float(d["failover_at"])
        forgot, ms = forget_everywhere(env, {n: a for n, a in addrs.items() if n != d["temp"]}, d["temp_id"])
        env.kube.delete_pod(ns, d["temp"])
        return _Step(
            self._to(move, env, "temp_remove", failback_s=round(took, 3)),
            [
                f"failback verified on all {len(views)} nodes {took:.2f}s after the command: {move.pod} master of "
                f"{ranges_text(slots)} again",
                f"CLUSTER FORGET {short(d['temp_id'])} on {len(forgot)} nodes in {ms:.1f} ms; deleted temporary pod {d['temp']}",
            ],
        )

    def _temp_remove(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        tp = env.kube.get_pod(ns, d["temp"])
        if tp is not None:
            if tp.metadata.deletion_timestamp is None:
                env.kube.delete_pod(ns, d["temp"])
            return _Step(move, pending=f"temporary pod {d['temp']} is {pod_state(tp)}")
        addrs, views, pending = self._survey(env, move, with_temp=False)
        if pending:
            return _Step(move, pending=pending)
        actions: list[str] = []
        if remembering := decide.remembering(views, d["temp_id"]):
            # Within the ban window only a node that missed the FORGET can still list it.
            forget_everywhere(env, {n: addrs[n] for n in remembering}, d["temp_id"])
            actions.append(f"{', '.join(remembering)} still listed the temporary node: CLUSTER FORGET again")
            return _Step(move, actions, pending="every node to forget the temporary node")
        problems = cluster_problems(views, {}, None)
        states = {}
        for n, addr in addrs.items():
            with admin(env, addr) as a:
                states[n] = a.info().get("cluster_state")
        problems += [f"{n}: cluster_state:{s}" for n, s in sorted(states.items()) if s != "ok"]
        why = roles_agree(views, d["node_id"], d["temp_id"], move_slots(d), replica_may_be_gone=True)
        if problems or why:
            return _Step(nudge(env, move, addrs, views), pending="; ".join(problems + ([why] if why else [])))
        total = env.deps.now().timestamp() - datetime.fromisoformat(d["started"]).timestamp()
        return _Step(
            self._done(move, total_s=round(total, 1)),
            [
                f"temporary node gone from all {len(views)} nodes; cluster_state:ok and 16384 slots covered everywhere; "
                f"{move.pod} master of {ranges_text(d['slots'])} on {d.get('new_node')} at {d.get('new_ip')} ({total:.1f}s in all)"
            ],
        )

    # --- the replica path (and any pod found already deleted) ----------------------------------
    def _restart(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        pod = env.kube.get_pod(ns, move.pod)
        if pod is not None and pod.metadata.uid == d["uid"]:
            if blocked := env.evict(move.pod, d["uid"]):
                return self._refused(move, env, blocked)
            return _Step(move, pending=f"{move.pod} is still the old pod ({pod_state(pod)})")
        addr = addr_of(pod)
        if pod is None or addr is None:
            return _Step(move, pending=f"{move.pod} is {pod_state(pod)}")
        if tainted(env, pod.spec.node_name):
            raise RedisSwitchoverError(f"{move.ref} came back on old node {pod.spec.node_name}")
        with admin(env, addr) as a:
            node_id = a.myid()
            me = myself(a.nodes())
        if d.get("node_id") and node_id != d["node_id"]:
            raise RedisSwitchoverError(
                f"{move.ref} came back as node {short(node_id)}, not {short(d['node_id'])}: its nodes.conf is gone"
            )
        members = members_of(env)
        down = [f"{n} is {pod_state(p)}" for n, p in members.items() if not running(p)]
        if down:
            return _Step(move, pending="; ".join(down))
        addrs = {n: ad for n, p in members.items() if (ad := addr_of(p))}
        if me is not None and me.ip != addr[0]:
            peer = next(ad for n, ad in addrs.items() if n != move.pod)
            with admin(env, peer) as p:
                p.meet(*addr)
            return _Step(
                move,
                [f"{move.pod}'s own view still had its old IP {me.ip}: CLUSTER MEET {addr[0]} from a peer"],
                pending=f"{move.pod}'s own view to show {addr[0]}",
            )
        views, errors = look(env, addrs)
        stale = decide.not_announced(views, node_id, addr[0])
        if errors or stale:
            return _Step(
                move,
                pending="; ".join(
                    [f"{n}: {e}" for n, e in errors.items()]
                    + [f"{n} does not show {move.pod} at {addr[0]}" for n in stale]
                ),
            )
        detail = "master"
        if me is not None and me.is_replica:
            master = next(
                (a for n, a in addrs.items() if (m := myself(views[n])) is not None and m.id == me.master_id),
                None,
            )
            if master is None:
                return _Step(
                    move,
                    pending=f"the master {short(me.master_id)} of {move.pod} is not a running group pod",
                )
            synced, detail = sync_gap(env, addr, master)
            if not synced:
                return _Step(move, pending=f"{move.pod} not synced: {detail}")
        problems = cluster_problems(views, {}, None)
        for n, a_ in addrs.items():
            with admin(env, a_) as c:
                if (state := c.info().get("cluster_state")) != "ok":
                    problems.append(f"{n}: cluster_state:{state}")
        if problems:
            return _Step(nudge(env, move, addrs, views), pending="; ".join(problems))
        started = d.get("started")
        total = env.deps.now().timestamp() - datetime.fromisoformat(started).timestamp() if started else 0.0
        return _Step(
            self._done(move, new_ip=addr[0], new_node=pod.spec.node_name, total_s=round(total, 1)),
            [
                f"{move.pod} back on new node {pod.spec.node_name} at {addr[0]} with node id {short(node_id)}, "
                f"announced there by all {len(views)} nodes, {detail}; cluster_state:ok everywhere ({total:.1f}s in all)"
            ],
        )

    # --- after success or failure ---------------------------------------------------------------
    def cleanup(self, env: RedisEnv) -> list[str]:
        return cleanup_temps(env)
