"""Redis Cluster: reading the group (its pods, every node's CLUSTER NODES view, a replica's sync)
and the pure checks over those views that every phase decides on."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ....labels import (
    LABEL_RUN,
    LABEL_TOPOLOGY_ZONE,
    REDIS_GROUP,
    REDIS_PORT,
    REDIS_TEMP_FOR,
    REDIS_TEMP_FOR_NODE_ID,
    REDIS_TEMP_FOR_POD,
    REDIS_TEMP_SLOTS,
)
from ....redis.cluster import NodeAdmin, NodeEntry, RedisError
from ..procedure import RedisEnv

log = logging.getLogger(__name__)

# Short names for the keys of eks_rolling.labels this procedure uses.
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


def short(node_id: str | None) -> str:
    return (node_id or "?")[:8]


def label_safe(value: str) -> str:
    if len(value) <= 63:
        return value
    return value[:54] + "-" + hashlib.sha1(value.encode()).hexdigest()[:8]


def temp_name(pod: str) -> str:
    # Not `<sts>-<ordinal>`: the StatefulSet controller never adopts it.
    return pod + TEMP_SUFFIX


# --- pods ------------------------------------------------------------------------------------------
def pod_port(pod: Any) -> int:
    for c in pod.spec.containers or []:
        ports = c.ports or []
        named = [p for p in ports if p.name == "redis"]
        if named or ports:
            return int((named or ports)[0].container_port)
    return DEFAULT_PORT


def running(pod: Any | None) -> bool:
    if pod is None or pod.metadata.deletion_timestamp is not None or not pod.status.pod_ip:
        return False
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return bool(pod.status.phase == "Running" and ready)


def pod_state(pod: Any | None) -> str:
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


def addr_of(pod: Any | None) -> Addr | None:
    if pod is None or not running(pod):
        return None
    return (str(pod.status.pod_ip), pod_port(pod))


def members_of(env: RedisEnv) -> dict[str, Any | None]:
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


def tainted(env: RedisEnv, node_name: str | None) -> bool:
    node = env.kube.get_node(node_name) if node_name else None
    return node is not None and any(t.key == env.settings.taint_key for t in node.spec.taints or [])


# --- talking to nodes --------------------------------------------------------------------------
def admin(env: RedisEnv, addr: Addr) -> NodeAdmin:
    return NodeAdmin(env.client(addr[0], addr[1]), f"{addr[0]}:{addr[1]}")


def look(env: RedisEnv, addrs: dict[str, Addr]) -> tuple[Views, dict[str, str]]:
    """`CLUSTER NODES` of every address; what did not answer goes in the second dict."""
    views: Views = {}
    errors: dict[str, str] = {}
    for name, addr in addrs.items():
        try:
            with admin(env, addr) as a:
                views[name] = a.nodes()
        except (RedisError, OSError) as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    return views, errors


def sync_gap(env: RedisEnv, replica: Addr, master: Addr) -> tuple[bool, str]:
    """(synced, detail): link up, no sync running, and the replica has processed everything the
    master had CATCH_UP_S earlier. Without a write pause offsets never match exactly; a fixed
    byte margin would depend on the write rate, a time margin does not. A manual failover started
    while the replica trails keeps the master's writers paused until it has caught up."""
    with admin(env, replica) as r:
        rep = r.replication()
        if rep.get("role") != "slave":
            return False, f"role {rep.get('role')}"
        if rep.get("master_link_status") != "up" or int(rep.get("master_sync_in_progress", 0)):
            return (
                False,
                f"link {rep.get('master_link_status')}, sync in progress {rep.get('master_sync_in_progress')}",
            )
        with admin(env, master) as m:
            master_offset = int(m.replication().get("master_repl_offset", 0))
        env.sleep(CATCH_UP_S)
        offset = int(r.replication().get("slave_repl_offset", 0))
    lag = master_offset - offset
    return lag <= 0, f"offset {offset}, master's {CATCH_UP_S:.1f}s earlier {master_offset}"


# --- the survey: one round's read-only look at the group -----------------------------------------
# What a failed read is: "not yet" for the phase that needed it, never a crash of the round.
class Unread(LookupError):
    """A pod not running, or an answer the survey does not hold (unit tests give values only)."""


READ_ERRORS = (RedisError, OSError, Unread)


@dataclass(frozen=True)
class Pod:
    name: str
    uid: str
    ip: str | None
    port: int
    node: str | None
    running: bool  # Running, Ready, not terminating, with an IP
    terminating: bool
    state: str  # for people: "absent", "terminating", "Pending (why)", ...
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def addr(self) -> Addr | None:
        return (self.ip, self.port) if self.running and self.ip else None


def pod_of(pod: Any) -> Pod:
    md = pod.metadata
    return Pod(
        name=md.name,
        uid=md.uid,
        ip=pod.status.pod_ip,
        port=pod_port(pod),
        node=pod.spec.node_name,
        running=running(pod),
        terminating=md.deletion_timestamp is not None,
        state=pod_state(pod),
        labels=dict(md.labels or {}),
        annotations=dict(md.annotations or {}),
    )


def state_of(pod: Pod | None) -> str:
    return "absent" if pod is None else pod.state


class Probe(Protocol):
    """Where a Survey's reads of nodes come from (raising one of READ_ERRORS)."""

    def nodes(self, addr: Addr) -> list[NodeEntry]: ...

    def myid(self, addr: Addr) -> str: ...

    def cluster_state(self, addr: Addr) -> str | None: ...

    def role(self, addr: Addr) -> str: ...

    def sync(self, replica: Addr, master: Addr) -> tuple[bool, str]: ...

    def zone(self, node: str) -> str | None: ...

    def tainted(self, node: str) -> bool: ...


@dataclass
class Survey:
    """The group's pods (and this move's temporary pod) read at the start of the round; each
    node's answers read on first use and kept for the round. Built from values alone (no probe),
    it is what the unit tests give the pure decisions: what they did not give is a LookupError."""

    members: dict[str, Pod | None]  # the StatefulSets' pods by name (None: absent)
    temp: Pod | None = None  # this move's temporary pod
    leftovers: list[Pod] = field(default_factory=list)  # every temporary pod of the group
    probe: Probe | None = None
    answers: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def _read(self, key: tuple[str, ...], read: Callable[[Probe], Any]) -> Any:
        if key not in self.answers:
            try:
                if self.probe is None:
                    raise Unread(f"{' '.join(key)} was not surveyed")
                self.answers[key] = read(self.probe)
            except READ_ERRORS as exc:
                self.answers[key] = exc
        got = self.answers[key]
        if isinstance(got, Exception):
            raise got
        return got

    def pod(self, name: str) -> Pod | None:
        if self.temp is not None and name == self.temp.name:
            return self.temp
        return self.members.get(name)

    def addr(self, name: str) -> Addr:
        pod = self.pod(name)
        if pod is None or pod.addr is None:
            raise Unread(f"{name} is {state_of(pod)}")
        return pod.addr

    def addrs(self, *, with_temp: bool = False) -> dict[str, Addr]:
        out = {n: ad for n, p in self.members.items() if p is not None and (ad := p.addr)}
        if with_temp and self.temp is not None and self.temp.addr is not None:
            out[self.temp.name] = self.temp.addr
        return out

    def down(self) -> list[str]:
        return [f"{n} is {state_of(p)}" for n, p in self.members.items() if p is None or not p.running]

    def nodes(self, name: str) -> list[NodeEntry]:
        return list(self._read(("nodes", name), lambda p: p.nodes(self.addr(name))))

    def myid(self, name: str) -> str:
        return str(self._read(("myid", name), lambda p: p.myid(self.addr(name))))

    def cluster_state(self, name: str) -> str | None:
        got = self._read(("state", name), lambda p: p.cluster_state(self.addr(name)))
        return None if got is None else str(got)

    def role(self, name: str) -> str:
        return str(self._read(("role", name), lambda p: p.role(self.addr(name))))

    def sync(self, replica: str, master: str) -> tuple[bool, str]:
        got = self._read(("sync", replica, master), lambda p: p.sync(self.addr(replica), self.addr(master)))
        return bool(got[0]), str(got[1])

    def zone(self, node: str) -> str | None:
        got = self._read(("zone", node), lambda p: p.zone(node))
        return None if got is None else str(got)

    def tainted(self, node: str | None) -> bool:
        return node is not None and bool(self._read(("tainted", node), lambda p: p.tainted(node)))

    def look(self, names: Iterable[str]) -> tuple[Views, dict[str, str]]:
        """`CLUSTER NODES` of each of `names`; what did not answer goes in the second dict."""
        views: Views = {}
        errors: dict[str, str] = {}
        for name in names:
            try:
                views[name] = self.nodes(name)
            except READ_ERRORS as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
        return views, errors


class LiveProbe:
    """A Survey's reads from the live group."""

    def __init__(self, env: RedisEnv) -> None:
        self.env = env

    def nodes(self, addr: Addr) -> list[NodeEntry]:
        with admin(self.env, addr) as n:
            return n.nodes()

    def myid(self, addr: Addr) -> str:
        with admin(self.env, addr) as n:
            return n.myid()

    def cluster_state(self, addr: Addr) -> str | None:
        with admin(self.env, addr) as n:
            return n.info().get("cluster_state")

    def role(self, addr: Addr) -> str:
        with admin(self.env, addr) as n:
            return n.role()

    def sync(self, replica: Addr, master: Addr) -> tuple[bool, str]:
        return sync_gap(self.env, replica, master)

    def zone(self, node: str) -> str | None:
        got = self.env.kube.get_node(node)
        return ((got.metadata.labels or {}) if got is not None else {}).get(ZONE_LABEL)

    def tainted(self, node: str) -> bool:
        return tainted(self.env, node)


def survey(env: RedisEnv, temp: str | None, *, leftovers: bool = True) -> Survey:
    """The group's pods now (one LIST per StatefulSet, one GET for the temporary pod and, where
    health is judged, one LIST for leftover temporary pods); the nodes are asked on first use."""
    members = {n: None if p is None else pod_of(p) for n, p in members_of(env).items()}
    ns = env.group.namespace
    tp = env.kube.get_pod(ns, temp) if temp else None
    selector = f"{TEMP_FOR_LABEL},{GROUP_LABEL}={label_safe(env.group.name)}"
    left = env.kube.list_pods(ns, selector) if leftovers else []
    return Survey(
        members,
        temp=None if tp is None else pod_of(tp),
        leftovers=[pod_of(p) for p in left],
        probe=LiveProbe(env),
    )
