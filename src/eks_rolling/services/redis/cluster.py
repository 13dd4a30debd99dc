"""Redis Cluster: moving a node off an old worker through a temporary replica (field report,
"Redis Cluster"; anchors-redis 6.3).

Each shard has one replica, in the other zone, and a node's `nodes.conf` lives on a zonal volume.
A master A is therefore moved through a temporary node T built from A's StatefulSet template:

  start             A is master of its slots: create T (emptyDir for nodes.conf, our labels only,
                    A's zone, no toleration of our taint, so a new node)
  temp_start        T Ready -> `CLUSTER MEET` A from T
  temp_join         every node knows T (no handshake) -> `CLUSTER REPLICATE <A>` on T
  temp_sync         T synced and listed as A's replica by every master -> `CLUSTER FAILOVER` on T
  failover_to_temp  every node: T master of A's slots, A replica of T -> evict pod A
  a_restart         A back (same node id from its volume, new IP, announced right everywhere; its
                    own stale `myself` fixed by a MEET from a peer) and synced from T
                    -> `CLUSTER FAILOVER` on A
  failover_to_a     every node: A master again, nobody follows T -> `CLUSTER FORGET T` on every
                    other node in one go (the 60 s ban must not expire anywhere first) -> delete T
  temp_remove       T's pod gone, no node knows T, `cluster_state:ok` and 16384 slots everywhere

A replica (or a master without slots) is simply evicted (`start`) and awaited (`restart`: back
with its node id, announced everywhere, synced). Pods of the group leave through the Eviction
API, so a PodDisruptionBudget on the StatefulSets holds (a 429 waits, within the phase, then
DrainTimeoutError naming the PDB); only the temporary pod (ours, no user's labels) is deleted.
`OK` from `CLUSTER FAILOVER` is never taken as success: the roles are read back from every node.
Every phase re-reads the cluster before it acts and each act is safe to repeat, because Step
Functions may run a phase twice.

Consistency argument (cleanup and aborts, `remove_temp`):
  * Both failovers are default manual failovers: the master stops its clients and the replica
    takes over only at the master's exact offset, so no acknowledged write is lost; FORCE and
    TAKEOVER (which skip that handshake) are never used.
  * T is removed only when it holds no slots and no node replicates it, so `CLUSTER FORGET` can
    never uncover a slot. If T is master, A takes its slots back first, and only if A is a synced
    replica of T.
  * If A is gone or not synced, T stays the master and its pod is kept (reported as a note):
    deleting it would leave A's slots uncovered until an automatic failover to the sibling
    replica, and lose what the sibling has not yet received. A keeps T as its master in its
    `nodes.conf`, so when A comes back it rejoins as T's replica; failing back and removing T is
    then a manual step (named in the note, and the next plan blocks on the leftover pod).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...errors import (
    ConflictError,
    DrainTimeoutError,
    PermanentError,
    RedisGroupUnhealthyError,
    RedisMoveTimeoutError,
    RedisSwitchoverError,
    RedisTempNodeError,
    RetryableError,
)
from ...labels import (
    LABEL_RUN,
    LABEL_TOPOLOGY_ZONE,
    REDIS_GROUP,
    REDIS_PORT,
    REDIS_TEMP_FOR,
    REDIS_TEMP_FOR_NODE_ID,
    REDIS_TEMP_FOR_POD,
    REDIS_TEMP_SLOTS,
)
from ...models import RedisMove
from ...redis.cluster import NodeAdmin, NodeEntry, RedisError, ranges_text, uncovered_slots
from .procedure import Advance, GroupHealth, RedisEnv

log = logging.getLogger(__name__)

# Local names for keys and ports of eks_rolling.labels, kept while the procedures are being split.
TEMP_FOR_LABEL = REDIS_TEMP_FOR
RUN_LABEL = LABEL_RUN
GROUP_LABEL = REDIS_GROUP
FOR_POD_ANNOTATION = REDIS_TEMP_FOR_POD
FOR_ID_ANNOTATION = REDIS_TEMP_FOR_NODE_ID
SLOTS_ANNOTATION = REDIS_TEMP_SLOTS
TEMP_SUFFIX = "-eksr-tmp"
ZONE_LABEL = LABEL_TOPOLOGY_ZONE
DEFAULT_PORT = REDIS_PORT

# A replica counts as synced once it has processed all the master had this long before (the
# manual failover then only waits for the last few writes, with the master's clients paused).
CATCH_UP_S = 0.1
# A manual failover gives up after 5 s (CLUSTER_MF_TIMEOUT): re-issue after that, a few times.
FAILOVER_RETRY_S = 8.0
FAILOVER_ATTEMPTS = 3

Addr = tuple[str, int]
Views = dict[str, list[NodeEntry]]


def _short(node_id: str | None) -> str:
    return (node_id or "?")[:8]


def _label_safe(value: str) -> str:
    if len(value) <= 63:
        return value
    return value[:54] + "-" + hashlib.sha1(value.encode()).hexdigest()[:8]


def temp_name(pod: str) -> str:
    # Not `<sts>-<ordinal>`: the StatefulSet controller never adopts it.
    return pod + TEMP_SUFFIX


def _slots(data: dict[str, Any]) -> list[tuple[int, int]]:
    return _norm(data["slots"])


def _norm(ranges: Iterable[Iterable[int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted((int(r[0]), int(r[1])) for r in (list(x) for x in ranges)):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# --- pods ------------------------------------------------------------------------------------------
def _port(pod: Any) -> int:
    for c in pod.spec.containers or []:
        ports = c.ports or []
        named = [p for p in ports if p.name == "redis"]
        if named or ports:
            return int((named or ports)[0].container_port)
    return DEFAULT_PORT


def _running(pod: Any | None) -> bool:
    if pod is None or pod.metadata.deletion_timestamp is not None or not pod.status.pod_ip:
        return False
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return bool(pod.status.phase == "Running" and ready)


def _pod_state(pod: Any | None) -> str:
    if pod is None:
        return "absent"
    if pod.metadata.deletion_timestamp is not None:
        return "terminating"
    why = [
        c.message or c.reason or ""
        for c in pod.status.conditions or []
        if c.type == "PodScheduled" and c.status == "False"
    ]
    return f"{pod.status.phase or 'Pending'}" + (f" ({why[0]})" if why and why[0] else "")


def _addr(pod: Any | None) -> Addr | None:
    if pod is None or not _running(pod):
        return None
    return (str(pod.status.pod_ip), _port(pod))


def _members(env: RedisEnv) -> dict[str, Any | None]:
    """The group's pods by name (None where the StatefulSet's pod does not exist right now): one
    LIST per StatefulSet (by its selector), not a GET per pod: this runs several times a round."""
    out: dict[str, Any | None] = {}
    ns = env.group.namespace
    for sts_name in sorted(env.group.statefulsets):
        sts = env.kube.statefulset(ns, sts_name)
        if sts is None:
            continue
        replicas = sts.spec.replicas if sts.spec.replicas is not None else 1
        names = [f"{sts_name}-{i}" for i in range(replicas)]
        labels = (sts.spec.selector.match_labels or {}) if sts.spec.selector else {}
        if labels and not sts.spec.selector.match_expressions:
            found = {
                p.metadata.name: p
                for p in env.kube.list_pods(ns, ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
            }
            out.update({n: found.get(n) for n in names})
        else:
            out.update({n: env.kube.get_pod(ns, n) for n in names})
    return out


def _tainted(env: RedisEnv, node_name: str | None) -> bool:
    node = env.kube.get_node(node_name) if node_name else None
    return node is not None and any(t.key == env.settings.taint_key for t in node.spec.taints or [])


# --- talking to nodes --------------------------------------------------------------------------
def _admin(env: RedisEnv, addr: Addr) -> NodeAdmin:
    return NodeAdmin(env.client(addr[0], addr[1]), f"{addr[0]}:{addr[1]}")


def _look(env: RedisEnv, addrs: dict[str, Addr]) -> tuple[Views, dict[str, str]]:
    """`CLUSTER NODES` of every address; what did not answer goes in the second dict."""
    views: Views = {}
    errors: dict[str, str] = {}
    for name, addr in addrs.items():
        try:
            with _admin(env, addr) as a:
                views[name] = a.nodes()
        except (RedisError, OSError) as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    return views, errors


def _myself(entries: list[NodeEntry]) -> NodeEntry | None:
    return next((e for e in entries if e.myself), None)


def _entry(entries: list[NodeEntry], node_id: str) -> NodeEntry | None:
    return next((e for e in entries if e.id == node_id), None)


def _roles_agree(
    views: Views, master_id: str, replica_id: str, slots: list[tuple[int, int]], *, replica_may_be_gone: bool
) -> str | None:
    """None if every view has `master_id` as master of exactly `slots` and `replica_id` as its
    replica; else what disagrees."""
    for name, entries in views.items():
        m = _entry(entries, master_id)
        if m is None or not m.is_master or m.unsettled or _norm(m.slots) != slots:
            got = "unknown" if m is None else f"{','.join(sorted(m.flags))} slots {ranges_text(m.slots)}"
            return f"{name} sees {_short(master_id)} as {got}"
        r = _entry(entries, replica_id)
        if r is None and replica_may_be_gone:
            continue
        if r is None or not r.is_replica or r.master_id != master_id:
            got = "unknown" if r is None else ",".join(sorted(r.flags))
            got += f" of {_short(r.master_id)}" if r is not None and r.master_id else ""
            return f"{name} sees {_short(replica_id)} as {got}"
    return None


def _announce(env: RedisEnv, addrs: dict[str, Addr], who: str) -> None:
    """A node's new role reaches the others with its gossip, up to node-timeout/2 later. A MEET
    from it to each of them (already known: the handshake entry is dropped on the reply) carries
    its role in the packet header at once."""
    with _admin(env, addrs[who]) as n:
        for name, addr in addrs.items():
            if name != who:
                n.meet(*addr)


def _lagging(views: Views) -> list[str]:
    """Nodes whose own role (master, or replica of whom) some other node does not know yet."""
    out: list[str] = []
    for name, entries in views.items():
        me = _myself(entries)
        if me is None:
            continue
        for other, es in views.items():
            e = _entry(es, me.id) if other != name else None
            if e is not None and (e.is_master != me.is_master or e.master_id != me.master_id):
                out.append(name)
                break
    return sorted(out)


def _nudge(env: RedisEnv, move: RedisMove, addrs: dict[str, Addr], views: Views) -> RedisMove:
    """Announce (once per phase and node) the role of every node others have not caught up with."""
    done = list(move.data.get("announced") or [])
    for name in _lagging(views):
        if name not in done and name in addrs:
            _announce(env, addrs, name)
            done.append(name)
    return move.model_copy(update={"data": {**move.data, "announced": done}})


def _sync_gap(env: RedisEnv, replica: Addr, master: Addr) -> tuple[bool, str]:
    """(synced, detail): link up, no sync running, and the replica has processed everything the
    master had CATCH_UP_S earlier. Without a write pause offsets never match exactly; a fixed
    byte margin would depend on the write rate, a time margin does not. A manual failover started
    while the replica trails keeps the master's writers paused until it has caught up."""
    with _admin(env, replica) as r:
        rep = r.replication()
        if rep.get("role") != "slave":
            return False, f"role {rep.get('role')}"
        if rep.get("master_link_status") != "up" or int(rep.get("master_sync_in_progress", 0)):
            return (
                False,
                f"link {rep.get('master_link_status')}, sync in progress {rep.get('master_sync_in_progress')}",
            )
        with _admin(env, master) as m:
            master_offset = int(m.replication().get("master_repl_offset", 0))
        time.sleep(CATCH_UP_S)
        offset = int(r.replication().get("slave_repl_offset", 0))
    lag = master_offset - offset
    return lag <= 0, f"offset {offset}, master's {CATCH_UP_S:.1f}s earlier {master_offset}"


def _cluster_problems(views: Views, errors: dict[str, str], known_ids: set[str] | None) -> list[str]:
    """What makes the group unsafe to touch, from every node's own view."""
    out: list[str] = [f"{name} does not answer ({why})" for name, why in sorted(errors.items())]
    for name, entries in sorted(views.items()):
        me = _myself(entries)
        missing = uncovered_slots(entries)
        if missing:
            out.append(f"{name}: {missing} of 16384 slots uncovered")
        for e in entries:
            if e.flags & {"fail", "fail?"}:
                out.append(f"{name} flags node {_short(e.id)} ({e.ip}) {','.join(sorted(e.flags))}")
            if (
                e.is_master
                and e.slots
                and not any(r.master_id == e.id and not r.unsettled for r in entries if r.is_replica)
            ):
                out.append(f"{name}: master {_short(e.id)} ({ranges_text(e.slots)}) has no replica")
            if known_ids is not None and e.id not in known_ids and not e.unsettled:
                out.append(
                    f"{name} knows node {_short(e.id)} ({e.ip}), which is no pod of the group (a leftover temporary node?)"
                )
        if me is None:
            out.append(f"{name}: no myself entry")
    return sorted(set(out))


@dataclass
class _Step:
    move: RedisMove
    actions: list[str] = field(default_factory=list)
    pending: str | None = None  # what is still awaited; None once the phase moved on
    on_timeout: type[PermanentError] = RedisMoveTimeoutError
    wait_s: int = 1


class RedisClusterProcedure:
    kind = "cluster"

    def order(self, move: RedisMove) -> int:
        # Roles are read live (a replica may have become master since discovery): one order.
        return 0

    # --- plan ----------------------------------------------------------------------------------
    def health(self, env: RedisEnv) -> GroupHealth:
        problems, masters = self._health(env)
        return GroupHealth(problems=problems, master_pods=masters)

    def _health(self, env: RedisEnv, own_temp: str | None = None) -> tuple[list[str], list[str]]:
        members = _members(env)
        problems = [
            f"pod {env.group.namespace}/{n} is {_pod_state(p)}" for n, p in members.items() if not _running(p)
        ]
        addrs = {n: ad for n, p in members.items() if (ad := _addr(p))}
        views, errors = _look(env, addrs)
        ids: set[str] = set()
        masters: list[str] = []
        for name, entries in views.items():
            me = _myself(entries)
            if me is not None:
                ids.add(me.id)
                if me.is_master and me.slots:
                    masters.append(name)
        for name, addr in addrs.items():
            if name in views:
                try:
                    with _admin(env, addr) as a:
                        state = a.info().get("cluster_state")
                except (RedisError, OSError) as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                if state != "ok":
                    problems.append(f"{name}: cluster_state:{state}")
        problems += _cluster_problems(views, errors, ids if not errors and len(ids) == len(members) else None)
        if not masters and not problems:
            problems.append("no node holds slots")
        for tp in env.kube.list_pods(
            env.group.namespace, f"{TEMP_FOR_LABEL},{GROUP_LABEL}={_label_safe(env.group.name)}"
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
            notes = self._abort(move, env)
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
        addr = _addr(pod)
        assert addr is not None  # _health found every pod running
        with _admin(env, addr) as a:
            me = _myself(a.nodes())
        if me is None:
            return _Step(move, pending=f"{move.pod} has no myself entry", on_timeout=RedisGroupUnhealthyError)
        if not (me.is_master and me.slots):
            # A replica (or an empty master): nothing is served from it, evict and await it.
            if blocked := env.evict(move.pod, d["uid"]):
                return self._refused(move, env, blocked)
            kind = "replica" if me.is_replica else "empty-master"
            return _Step(
                self._to(move, env, "restart", kind=kind, node_id=me.id, started=env.now.isoformat()),
                [
                    f"{move.pod} ({_short(me.id)}) is a {kind}"
                    + (f" of {_short(me.master_id)}" if me.master_id else "")
                    + f"; evicted the pod (uid {d['uid']}) so it is rescheduled on a new node in its zone"
                ],
            )
        node = env.kube.get_node(pod.spec.node_name)
        zone = ((node.metadata.labels or {}) if node is not None else {}).get(ZONE_LABEL)
        if not zone:
            raise RedisTempNodeError(f"node {pod.spec.node_name} of {move.ref} has no {ZONE_LABEL} label")
        slots = _norm(me.slots)
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
        created = self._ensure_temp(move, env)
        return _Step(
            move,
            [
                f"{move.pod} ({_short(me.id)}) is master of slots {ranges_text(slots)}; "
                + ("created" if created else "found")
                + f" temporary pod {temp} from StatefulSet {move.statefulset}'s template in {zone}"
            ],
        )

    def _ensure_temp(self, move: RedisMove, env: RedisEnv) -> bool:
        """Create the temporary pod unless this run's is already there. True if created now."""
        ns, d = env.group.namespace, move.data
        name = str(d["temp"])
        existing = env.kube.get_pod(ns, name)
        if existing is not None:
            run = (existing.metadata.labels or {}).get(RUN_LABEL)
            if run != env.ctx.taint_value:
                raise RedisTempNodeError(
                    f"pod {ns}/{name} exists and is not this run's temporary pod (run {run})"
                )
            return False
        sts = env.kube.statefulset(ns, move.statefulset)
        if sts is None:
            raise RedisTempNodeError(f"StatefulSet {ns}/{move.statefulset} of {move.ref} is gone")
        body = self._temp_body(env, move, env.kube.sanitize(sts.spec.template), sts)
        try:
            env.kube.create_pod(ns, body)
        except ConflictError:
            return False  # created by a concurrent attempt of this phase: the next round checks it
        except RetryableError:
            raise
        except Exception as exc:  # 4xx: the template cannot run as a plain pod here
            raise RedisTempNodeError(f"could not create temporary pod {ns}/{name}: {exc}") from exc
        return True

    def _temp_body(self, env: RedisEnv, move: RedisMove, tpl: dict[str, Any], sts: Any) -> dict[str, Any]:
        d = move.data
        spec = copy.deepcopy(tpl.get("spec") or {})
        for key in ("nodeName", "hostname", "subdomain"):
            spec.pop(key, None)
        # Claim volumes are mounted but not in the template's volumes (the controller adds them):
        # an empty volume each, so the temp node starts with a fresh nodes.conf (422 otherwise).
        volumes = list(spec.get("volumes") or [])
        have = {v["name"] for v in volumes}
        mounted = {
            m["name"]
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
            for m in c.get("volumeMounts") or []
        }
        volumes += [{"name": n, "emptyDir": {}} for n in sorted(mounted - have)]
        spec["volumes"] = volumes
        # Nothing that tolerates our taint: the taint alone keeps it off every old node.
        key = env.settings.taint_key
        spec["tolerations"] = [
            t
            for t in spec.get("tolerations") or []
            if not (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
        ]
        zone_expr = {"key": ZONE_LABEL, "operator": "In", "values": [d["zone"]]}
        required = (
            spec.setdefault("affinity", {})
            .setdefault("nodeAffinity", {})
            .setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
        )
        terms = required.get("nodeSelectorTerms") or [{}]
        for term in terms:  # terms are ORed: each one gets the zone
            term.setdefault("matchExpressions", []).append(zone_expr)
        required["nodeSelectorTerms"] = terms
        tpl_md = tpl.get("metadata") or {}
        # Only our labels: out of the StatefulSet's selector, its Services and its PDBs.
        labels = {
            TEMP_FOR_LABEL: _label_safe(move.pod),
            RUN_LABEL: env.ctx.taint_value,
            GROUP_LABEL: _label_safe(env.group.name),
        }
        annotations = {
            **(tpl_md.get("annotations") or {}),
            FOR_POD_ANNOTATION: move.pod,
            FOR_ID_ANNOTATION: str(d["node_id"]),
            SLOTS_ANNOTATION: ranges_text(d["slots"]),
        }
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": d["temp"],
                "namespace": env.group.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": spec,
        }

    # --- the master path -------------------------------------------------------------------------
    def _temp_start(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        tp = env.kube.get_pod(ns, d["temp"])
        if tp is None:
            self._ensure_temp(move, env)
            return _Step(
                move, [f"temporary pod {d['temp']} was missing: created it again"], pending="temp pod"
            )
        if not _running(tp):
            return _Step(move, pending=f"temporary pod {d['temp']} is {_pod_state(tp)}")
        if _tainted(env, tp.spec.node_name):
            raise RedisTempNodeError(f"temporary pod {ns}/{d['temp']} landed on old node {tp.spec.node_name}")
        a_pod = env.kube.get_pod(ns, move.pod)
        a_addr = _addr(a_pod)
        if a_pod is None or a_addr is None or a_pod.metadata.uid != d["uid"]:
            raise RedisSwitchoverError(
                f"{move.ref} went away ({_pod_state(a_pod)}) before its temporary node joined"
            )
        t_addr = _addr(tp)
        assert t_addr is not None
        with _admin(env, t_addr) as t:
            temp_id = t.myid()
            # T is ours: it must not wander to another shard (replica migration, anchors 2.4)
            # nor be promoted automatically while it is still a replica of A.
            t.config_set("cluster-allow-replica-migration", "no")
            t.config_set("cluster-replica-no-failover", "yes")
            known = {(e.ip, e.port) for e in t.nodes() if not e.myself}
            # One MEET would do, but gossip then takes seconds to reach every node; a MEET to
            # each running group pod converges in a few hundred milliseconds.
            peers = [
                a_addr,
                *sorted({ad for p in _members(env).values() if (ad := _addr(p)) and ad != a_addr}),
            ]
            for peer in peers:
                if peer not in known:
                    t.meet(*peer)
        return _Step(
            self._to(move, env, "temp_join", temp_id=temp_id, temp_ip=t_addr[0], temp_node=tp.spec.node_name),
            [
                f"temporary pod {d['temp']} Ready on new node {tp.spec.node_name} ({d['zone']}) at {t_addr[0]}, "
                f"node id {_short(temp_id)}; CLUSTER MEET {a_addr[0]} {a_addr[1]} (and the {len(peers) - 1} other nodes) from it"
            ],
        )

    def _every_node(
        self, env: RedisEnv, move: RedisMove, *, with_temp: bool = True
    ) -> tuple[dict[str, Addr], str | None]:
        """Addresses of every group pod (and T): (addresses, what is not running)."""
        members = _members(env)
        down = [f"{n} is {_pod_state(p)}" for n, p in members.items() if not _running(p)]
        addrs = {n: ad for n, p in members.items() if (ad := _addr(p))}
        if with_temp:
            tp = env.kube.get_pod(env.group.namespace, move.data["temp"])
            t_addr = _addr(tp)
            if t_addr is None:
                down.append(f"temporary pod {move.data['temp']} is {_pod_state(tp)}")
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
        views, errors = _look(env, addrs)
        return addrs, views, "; ".join(f"{n}: {e}" for n, e in errors.items()) or None

    def _check_a_master(self, views: Views, move: RedisMove) -> None:
        me = _myself(views.get(move.pod, []))
        if me is not None and not (me.is_master and _norm(me.slots) == _slots(move.data)):
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
        unaware = [n for n, es in views.items() if (e := _entry(es, d["temp_id"])) is None or e.unsettled]
        if unaware:
            return _Step(
                move,
                pending=f"{len(unaware)} of {len(views)} nodes do not know the temporary node yet ({', '.join(sorted(unaware))})",
            )
        with _admin(env, addrs[d["temp"]]) as t:
            me = _myself(t.nodes())
            if me is None or me.master_id != d["node_id"]:
                t.replicate(d["node_id"])
        _announce(env, addrs, d["temp"])
        return _Step(
            self._to(move, env, "temp_sync"),
            [
                f"all {len(views)} nodes know {_short(d['temp_id'])}; CLUSTER REPLICATE {_short(d['node_id'])} on it"
            ],
        )

    def _temp_sync(self, move: RedisMove, env: RedisEnv) -> _Step:
        d = move.data
        addrs, views, pending = self._survey(env, move)
        if pending:
            return _Step(move, pending=pending)
        t_own = _myself(views[d["temp"]])
        if t_own is not None and t_own.is_master and _norm(t_own.slots) == _slots(d):
            # An earlier attempt of this phase sent the failover and it took effect: verify it.
            return _Step(
                self._to(move, env, "failover_to_temp", failover_at=time.time(), failover_tries=1),
                ["the failover sent by an earlier attempt of this phase took effect"],
            )
        self._check_a_master(views, move)
        t_me = _myself(views[d["temp"]])
        if t_me is None or t_me.master_id != d["node_id"]:
            raise RedisSwitchoverError(
                f"temporary node {_short(d['temp_id'])} no longer replicates {_short(d['node_id'])} "
                f"({'unknown' if t_me is None else _short(t_me.master_id)})"
            )
        synced, detail = _sync_gap(env, addrs[d["temp"]], addrs[move.pod])
        if not synced:
            return _Step(move, pending=f"temporary node not synced from {move.pod}: {detail}")
        masters = [
            n for n, es in views.items() if (me := _myself(es)) is not None and me.is_master and me.slots
        ]
        unlisted = [
            n
            for n in masters
            if (e := _entry(views[n], d["temp_id"])) is None
            or not e.is_replica
            or e.master_id != d["node_id"]
            or e.unsettled
        ]
        if unlisted:
            return _Step(
                _nudge(env, move, addrs, views),
                pending=f"masters {', '.join(unlisted)} do not list the temporary node as replica of {move.pod} yet",
            )
        with _admin(env, addrs[d["temp"]]) as t:
            if t.role() != "master":
                t.failover()
        return _Step(
            self._to(move, env, "failover_to_temp", failover_at=time.time(), failover_tries=1),
            [
                f"temporary node synced ({detail}) and listed as replica of {move.pod} by all {len(masters)} masters; "
                "CLUSTER FAILOVER on it"
            ],
        )

    def _retry_failover(self, move: RedisMove, env: RedisEnv, addr: Addr, who: str, why: str) -> _Step:
        """The roles do not agree yet: re-issue a failover that gave up, or keep waiting."""
        d = move.data
        if time.time() - float(d["failover_at"]) < FAILOVER_RETRY_S:
            return _Step(move, pending=why)
        with _admin(env, addr) as n:
            if n.role() == "master":
                return _Step(move, pending=why)  # it did take over: the others will agree shortly
            if int(d["failover_tries"]) >= FAILOVER_ATTEMPTS:
                raise RedisSwitchoverError(
                    f"CLUSTER FAILOVER on {who} did not take effect after {FAILOVER_ATTEMPTS} attempts: {why}"
                )
            n.failover()
        tries = int(d["failover_tries"]) + 1
        return _Step(
            move.model_copy(update={"data": {**d, "failover_at": time.time(), "failover_tries": tries}}),
            [f"failover to {who} had not happened ({why}): CLUSTER FAILOVER again (attempt {tries})"],
            pending=why,
        )

    def _failover_to_temp(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        slots = _slots(d)
        a_pod = env.kube.get_pod(ns, move.pod)
        if a_pod is None or a_pod.metadata.uid != d["uid"] or a_pod.metadata.deletion_timestamp is not None:
            # Only this phase deletes A, once the roles were verified: an earlier attempt did.
            return _Step(self._to(move, env, "a_restart"), [f"{move.pod} was deleted by an earlier attempt"])
        addrs, views, pending = self._survey(env, move)
        if pending:
            return _Step(move, pending=pending)
        why = _roles_agree(views, d["temp_id"], d["node_id"], slots, replica_may_be_gone=False)
        if why is None:
            with _admin(env, addrs[d["temp"]]) as t, _admin(env, addrs[move.pod]) as a:
                if t.role() != "master" or a.role() != "slave":
                    why = "ROLE of the temporary node and of A not switched yet"
        if why is not None:
            move = _nudge(env, move, addrs, views)
            return self._retry_failover(move, env, addrs[d["temp"]], "the temporary node", why)
        took = time.time() - float(d["failover_at"])
        if blocked := env.evict(move.pod, d["uid"]):
            # The temporary node serves A's slots meanwhile; past the deadline the abort fails back.
            return self._refused(move, env, blocked)
        return _Step(
            self._to(move, env, "a_restart", failover_to_temp_s=round(took, 3)),
            [
                f"failover verified on all {len(views)} nodes {took:.2f}s after the command: "
                f"{_short(d['temp_id'])} master of {ranges_text(slots)}, {move.pod} its replica; "
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
            return _Step(move, pending=f"{move.pod} is still the old pod ({_pod_state(pod)})")
        a_addr = _addr(pod)
        if pod is None or a_addr is None:
            return _Step(move, pending=f"{move.pod} is {_pod_state(pod)}")
        if _tainted(env, pod.spec.node_name):
            raise RedisSwitchoverError(f"{move.ref} came back on old node {pod.spec.node_name}")
        actions: list[str] = []
        with _admin(env, a_addr) as a:
            node_id = a.myid()
            if node_id != d["node_id"]:
                raise RedisSwitchoverError(
                    f"{move.ref} came back as node {_short(node_id)}, not {_short(d['node_id'])}: its nodes.conf is gone"
                )
            me = _myself(a.nodes())
        addrs, down = self._every_node(env, move)
        if down:
            return _Step(move, pending=down)
        if me is not None and me.ip != a_addr[0]:
            # redis/redis#4645: a moved node keeps its old IP in its own view; a MEET fixes it.
            with _admin(env, addrs[d["temp"]]) as t:
                t.meet(*a_addr)
            actions.append(
                f"{move.pod}'s own view still had its old IP {me.ip}: CLUSTER MEET {a_addr[0]} from the temporary node"
            )
            return _Step(move, actions, pending=f"{move.pod}'s own view to show {a_addr[0]}")
        views, errors = _look(env, addrs)
        if errors:
            return _Step(move, pending="; ".join(f"{n}: {e}" for n, e in errors.items()))
        stale = [
            n
            for n, es in views.items()
            if (e := _entry(es, node_id)) is None or e.ip != a_addr[0] or e.unsettled
        ]
        if stale:
            return _Step(
                move, pending=f"{', '.join(sorted(stale))} do not show {move.pod} at {a_addr[0]} yet"
            )
        mine = _myself(views[move.pod])
        if mine is not None and mine.is_master and _norm(mine.slots) == _slots(d):
            # An earlier attempt of this phase sent the failback and it took effect: verify it.
            return _Step(
                self._to(
                    move,
                    env,
                    "failover_to_a",
                    failover_at=time.time(),
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
        synced, detail = _sync_gap(env, a_addr, addrs[d["temp"]])
        if not synced:
            return _Step(move, pending=f"{move.pod} not synced from the temporary node: {detail}")
        with _admin(env, a_addr) as a:
            if a.role() != "master":
                a.failover()
        return _Step(
            self._to(
                move,
                env,
                "failover_to_a",
                failover_at=time.time(),
                failover_tries=1,
                new_ip=a_addr[0],
                new_node=pod.spec.node_name,
            ),
            [
                *actions,
                f"{move.pod} back on new node {pod.spec.node_name} at {a_addr[0]} with node id {_short(node_id)}, "
                f"announced there by all {len(views)} nodes, synced ({detail}); CLUSTER FAILOVER on {move.pod}",
            ],
        )

    def _failover_to_a(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        slots = _slots(d)
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
        why = _roles_agree(views, d["node_id"], d["temp_id"], slots, replica_may_be_gone=True)
        if why is None:
            t_me = _myself(views[d["temp"]])
            if t_me is None or t_me.master_id != d["node_id"]:
                why = "the temporary node does not see itself as replica of A yet"
            followers = sorted(n for n, es in views.items() for e in es if e.master_id == d["temp_id"])
            if followers:
                why = f"nodes still follow the temporary node in {', '.join(followers)}"
        if why is not None:
            move = _nudge(env, move, addrs, views)
            return self._retry_failover(move, env, addrs[move.pod], move.pod, why)
        took = time.time() - float(d["failover_at"])
        forgot, ms = self._forget_everywhere(
            env, {n: a for n, a in addrs.items() if n != d["temp"]}, d["temp_id"]
        )
        env.kube.delete_pod(ns, d["temp"])
        return _Step(
            self._to(move, env, "temp_remove", failback_s=round(took, 3)),
            [
                f"failback verified on all {len(views)} nodes {took:.2f}s after the command: {move.pod} master of "
                f"{ranges_text(slots)} again",
                f"CLUSTER FORGET {_short(d['temp_id'])} on {len(forgot)} nodes in {ms:.1f} ms; deleted temporary pod {d['temp']}",
            ],
        )

    @staticmethod
    def _forget_everywhere(env: RedisEnv, addrs: dict[str, Addr], node_id: str) -> tuple[list[str], float]:
        """FORGET on every address, back to back: the 60 s ban (Redis 7.0) must start everywhere
        before any node could gossip the forgotten node back. Raises if a node refuses."""
        t0 = time.monotonic()
        done: list[str] = []
        for name, addr in addrs.items():
            with _admin(env, addr) as n:
                n.forget(node_id)
            done.append(name)
        return done, (time.monotonic() - t0) * 1000

    def _temp_remove(self, move: RedisMove, env: RedisEnv) -> _Step:
        ns, d = env.group.namespace, move.data
        tp = env.kube.get_pod(ns, d["temp"])
        if tp is not None:
            if tp.metadata.deletion_timestamp is None:
                env.kube.delete_pod(ns, d["temp"])
            return _Step(move, pending=f"temporary pod {d['temp']} is {_pod_state(tp)}")
        addrs, views, pending = self._survey(env, move, with_temp=False)
        if pending:
            return _Step(move, pending=pending)
        actions: list[str] = []
        remembering = sorted(n for n, es in views.items() if _entry(es, d["temp_id"]) is not None)
        if remembering:
            # Within the ban window only a node that missed the FORGET can still list it.
            self._forget_everywhere(env, {n: addrs[n] for n in remembering}, d["temp_id"])
            actions.append(f"{', '.join(remembering)} still listed the temporary node: CLUSTER FORGET again")
            return _Step(move, actions, pending="every node to forget the temporary node")
        problems = _cluster_problems(views, {}, None)
        states = {}
        for n, addr in addrs.items():
            with _admin(env, addr) as a:
                states[n] = a.info().get("cluster_state")
        problems += [f"{n}: cluster_state:{s}" for n, s in sorted(states.items()) if s != "ok"]
        why = _roles_agree(views, d["node_id"], d["temp_id"], _slots(d), replica_may_be_gone=True)
        if problems or why:
            return _Step(
                _nudge(env, move, addrs, views), pending="; ".join(problems + ([why] if why else []))
            )
        total = (env.now - datetime.fromisoformat(d["started"])).total_seconds()  # on the step clock
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
            return _Step(move, pending=f"{move.pod} is still the old pod ({_pod_state(pod)})")
        addr = _addr(pod)
        if pod is None or addr is None:
            return _Step(move, pending=f"{move.pod} is {_pod_state(pod)}")
        if _tainted(env, pod.spec.node_name):
            raise RedisSwitchoverError(f"{move.ref} came back on old node {pod.spec.node_name}")
        with _admin(env, addr) as a:
            node_id = a.myid()
            me = _myself(a.nodes())
        if d.get("node_id") and node_id != d["node_id"]:
            raise RedisSwitchoverError(
                f"{move.ref} came back as node {_short(node_id)}, not {_short(d['node_id'])}: its nodes.conf is gone"
            )
        members = _members(env)
        down = [f"{n} is {_pod_state(p)}" for n, p in members.items() if not _running(p)]
        if down:
            return _Step(move, pending="; ".join(down))
        addrs = {n: ad for n, p in members.items() if (ad := _addr(p))}
        if me is not None and me.ip != addr[0]:
            peer = next(ad for n, ad in addrs.items() if n != move.pod)
            with _admin(env, peer) as p:
                p.meet(*addr)
            return _Step(
                move,
                [f"{move.pod}'s own view still had its old IP {me.ip}: CLUSTER MEET {addr[0]} from a peer"],
                pending=f"{move.pod}'s own view to show {addr[0]}",
            )
        views, errors = _look(env, addrs)
        stale = [
            n
            for n, es in views.items()
            if (e := _entry(es, node_id)) is None or e.ip != addr[0] or e.unsettled
        ]
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
                (
                    a
                    for n, a in addrs.items()
                    if (m := _myself(views[n])) is not None and m.id == me.master_id
                ),
                None,
            )
            if master is None:
                return _Step(
                    move,
                    pending=f"the master {_short(me.master_id)} of {move.pod} is not a running group pod",
                )
            synced, detail = _sync_gap(env, addr, master)
            if not synced:
                return _Step(move, pending=f"{move.pod} not synced: {detail}")
        problems = _cluster_problems(views, {}, None)
        for n, a_ in addrs.items():
            with _admin(env, a_) as c:
                if (state := c.info().get("cluster_state")) != "ok":
                    problems.append(f"{n}: cluster_state:{state}")
        if problems:
            return _Step(_nudge(env, move, addrs, views), pending="; ".join(problems))
        started = d.get("started")
        total = (env.now - datetime.fromisoformat(started)).total_seconds() if started else 0.0
        return _Step(
            self._done(move, new_ip=addr[0], new_node=pod.spec.node_name, total_s=round(total, 1)),
            [
                f"{move.pod} back on new node {pod.spec.node_name} at {addr[0]} with node id {_short(node_id)}, "
                f"announced there by all {len(views)} nodes, {detail}; cluster_state:ok everywhere ({total:.1f}s in all)"
            ],
        )

    # --- failure ---------------------------------------------------------------------------------
    def _abort(self, move: RedisMove, env: RedisEnv) -> list[str]:
        temp = move.data.get("temp")
        if not temp:
            return []
        try:
            tp = env.kube.get_pod(env.group.namespace, temp)
            if tp is None:
                return [f"temporary pod {temp} does not exist"]
            return self.remove_temp(env, tp) + self._fix_self_views(env)
        except Exception as exc:  # the named error must still surface; Rollback cleans up again
            log.exception("aborting the move of %s", move.ref)
            return [f"cleanup of {temp} failed ({type(exc).__name__}: {exc}); Rollback retries it"]

    def cleanup(self, env: RedisEnv) -> list[str]:
        """This run's temporary pods (found by label: Rollback does not see the moves) leave the
        cluster without uncovering a slot; see the module docstring for the argument."""
        selector = (
            f"{TEMP_FOR_LABEL},{RUN_LABEL}={env.ctx.taint_value},{GROUP_LABEL}={_label_safe(env.group.name)}"
        )
        notes: list[str] = []
        temps = env.kube.list_pods(env.group.namespace, selector)
        for tp in temps:
            notes += self.remove_temp(env, tp)
        if temps:
            notes += self._fix_self_views(env)
        return notes

    @staticmethod
    def _fix_self_views(env: RedisEnv, wait_s: float = 3.0) -> list[str]:
        """A pod restarted by an interrupted move may still announce its old IP to itself (and to
        clients asking it for CLUSTER SLOTS): a MEET from a peer fixes that (once the peer's cron
        has connected: up to ~100 ms), checked here until `wait_s`."""
        members = _members(env)
        addrs = {n: ad for n, p in members.items() if (ad := _addr(p))}
        notes: list[str] = []
        met: set[str] = set()
        deadline = time.monotonic() + wait_s
        while True:
            stale = []
            for name, addr in addrs.items():
                peer = next((a for n, a in addrs.items() if n != name), None)
                try:
                    with _admin(env, addr) as n:
                        me = _myself(n.nodes())
                    if peer is None or me is None or me.ip == addr[0]:
                        continue
                    stale.append(name)
                    if name not in met:
                        with _admin(env, peer) as p:
                            p.meet(*addr)
                        met.add(name)
                        notes.append(
                            f"{name}'s own view had its old IP {me.ip}: CLUSTER MEET {addr[0]} from a peer"
                        )
                except (RedisError, OSError) as exc:
                    stale.append(f"{name} ({type(exc).__name__})")
            if not stale:
                return notes
            if time.monotonic() > deadline:
                return [*notes, f"WARNING: own view of {', '.join(stale)} still not fixed"]
            time.sleep(0.1)

    def remove_temp(self, env: RedisEnv, tp: Any, *, wait_s: float | None = None) -> list[str]:
        ns, name = env.group.namespace, tp.metadata.name
        wait_s = env.settings.redis_cleanup_wait_s if wait_s is None else wait_s
        ann = tp.metadata.annotations or {}
        a_name, a_id = ann.get(FOR_POD_ANNOTATION, ""), ann.get(FOR_ID_ANNOTATION, "")
        t_addr = _addr(tp) or ((str(tp.status.pod_ip), _port(tp)) if tp.status.pod_ip else None)
        members = _members(env)
        addrs = {n: ad for n, p in members.items() if (ad := _addr(p))}
        temp_id = self._temp_id(env, t_addr, addrs)
        if temp_id is None:
            env.kube.delete_pod(ns, name)
            return [f"temporary pod {name} never joined the cluster: deleted it"]
        notes: list[str] = []
        deadline = time.monotonic() + wait_s
        issued = 0.0
        announced: set[str] = set()
        why: str | None = None
        while True:
            # Re-read the pods each time: A may come back while we wait.
            addrs = {n: ad for n, p in _members(env).items() if (ad := _addr(p))}
            everyone = {**addrs, **({name: t_addr} if t_addr else {})}
            views, _ = _look(env, everyone)
            for lagging in set(_lagging(views)) - announced:
                with contextlib.suppress(RedisError, OSError):
                    _announce(env, everyone, lagging)
                announced.add(lagging)
            holding = self._temp_holds_slots(views, name, temp_id)
            if not holding:
                followers = sorted(
                    n for n, es in views.items() for e in es if e.master_id == temp_id and not e.myself
                )
                if not followers:
                    break
                why = f"{', '.join(followers)} still follow it"
            else:
                a_pod = env.kube.get_pod(ns, a_name) if a_name else None
                a_addr = _addr(a_pod)
                why = self._failback_blocker(env, a_addr, a_id, temp_id, t_addr)
                if why is None and time.monotonic() - issued > FAILOVER_RETRY_S and a_addr is not None:
                    with _admin(env, a_addr) as a:
                        a.failover()
                    issued = time.monotonic()
                    notes.append(
                        f"{name} ({_short(temp_id)}) was master: CLUSTER FAILOVER on {a_name} to take its slots back"
                    )
            if time.monotonic() > deadline:
                if holding:
                    return [
                        *notes,
                        f"KEPT temporary pod {ns}/{name} ({_short(temp_id)}): it is master of "
                        f"{ann.get(SLOTS_ANNOTATION, '?')} and {a_name} cannot take them back ({why}); removing it would "
                        f"uncover those slots. When {a_name} is a synced replica of it: CLUSTER FAILOVER on {a_name}, "
                        f"then CLUSTER FORGET {temp_id} on every node and delete the pod",
                    ]
                return [*notes, f"KEPT temporary pod {ns}/{name}: {why}"]
            time.sleep(0.2)
        members = _members(env)
        addrs = {n: ad for n, p in members.items() if (ad := _addr(p))}
        missing = sorted(set(members) - set(addrs))
        forgot, ms = self._forget_everywhere(env, addrs, temp_id)
        env.kube.delete_pod(ns, name)
        notes.append(
            f"CLUSTER FORGET {_short(temp_id)} on {len(forgot)} nodes in {ms:.1f} ms; deleted temporary pod {name}"
        )
        if missing:
            notes.append(
                f"WARNING: {', '.join(missing)} did not run: they may gossip {_short(temp_id)} back after 60 s; "
                f"run CLUSTER FORGET {temp_id} on them"
            )
        return notes + self._settle(env, addrs)

    @staticmethod
    def _settle(env: RedisEnv, addrs: dict[str, Addr], wait_s: float = 5.0) -> list[str]:
        """After a FORGET a node may list a replica of the forgotten node without a master until
        that replica's next ping: announce lagging roles and wait (bounded) for a clean view."""
        deadline = time.monotonic() + wait_s
        announced: set[str] = set()
        while True:
            views, errors = _look(env, addrs)
            problems = _cluster_problems(views, errors, None)
            if not problems:
                return []
            if time.monotonic() > deadline:
                return [f"WARNING: after the cleanup: {'; '.join(problems)}"]
            for lagging in set(_lagging(views)) - announced:
                with contextlib.suppress(RedisError, OSError):
                    _announce(env, addrs, lagging)
                announced.add(lagging)
            time.sleep(0.2)

    def _temp_id(self, env: RedisEnv, t_addr: Addr | None, addrs: dict[str, Addr]) -> str | None:
        if t_addr is None:
            return None
        try:
            with _admin(env, t_addr) as t:
                if len(t.nodes()) > 1:
                    return t.myid()
        except (RedisError, OSError):
            pass
        # Not answering: the cluster may still know it by its address.
        views, _ = _look(env, addrs)
        return next((e.id for es in views.values() for e in es if (e.ip, e.port) == t_addr), None)

    @staticmethod
    def _temp_holds_slots(views: Views, temp: str, temp_id: str) -> bool:
        own = _myself(views.get(temp, []))
        if own is not None:
            return own.is_master and bool(own.slots)
        return any(
            (e := _entry(es, temp_id)) is not None and e.is_master and bool(e.slots) and "fail" not in e.flags
            for es in views.values()
        )

    def _failback_blocker(
        self, env: RedisEnv, a_addr: Addr | None, a_id: str, temp_id: str, t_addr: Addr | None
    ) -> str | None:
        """None if A can take its slots back from T now (a synced replica of T); else why not."""
        if a_addr is None:
            return "it is not running"
        if t_addr is None:
            return "the temporary node does not answer"
        try:
            with _admin(env, a_addr) as a:
                if a.myid() != a_id:
                    return "it has another node id"
                if a.role() == "master":
                    return "it is master already; waiting for every node to agree"
                me = _myself(a.nodes())
            if me is None or me.master_id != temp_id:
                return "it does not replicate the temporary node"
            synced, detail = _sync_gap(env, a_addr, t_addr)
        except (RedisError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if synced else f"not synced: {detail}"
