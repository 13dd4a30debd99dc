"""The Sentinel group as seen in one round: its pods (Kubernetes) and their Redis and Sentinel
state, read only. A Survey reads lazily and caches, so that a round reads what its phase needs
(the switchover's timing depends on sentinels' INFO ages read right before it acts); a Survey
built from values alone (no probe) is what the unit tests give the pure decisions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ....labels import REDIS_ORIGINAL_REPLICA_PRIORITY, REDIS_PORT, SENTINEL_PORT
from ....redis.connection import RedisError
from ....redis.sentinel import DataNode, Replication, SentinelNode, SentinelView, lag_bytes
from ..procedure import RedisEnv

PRIORITY_ANNOTATION = REDIS_ORIGINAL_REPLICA_PRIORITY
SYNC_SLACK_BYTES = 64 * 1024  # "in sync" under live writes; exact equality is checked under pause
# What a failed read is: "not yet" for the phase that needed it, never a crash of the round.
READ_ERRORS = (RedisError, OSError, LookupError)


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


class Probe(Protocol):
    """Where a Survey's Redis and Sentinel reads come from (raising one of READ_ERRORS)."""

    def replication(self, pod: Pod) -> Replication: ...

    def view(self, pod: Pod) -> SentinelView: ...

    def priority(self, pod: Pod) -> int: ...


@dataclass
class Survey:
    pods: dict[str, Pod]
    repl: dict[str, Replication | Exception] = field(default_factory=dict)
    views: dict[str, SentinelView | Exception] = field(default_factory=dict)
    prios: dict[str, int | Exception] = field(default_factory=dict)
    probe: Probe | None = None

    def _unread(self, pod: Pod) -> Exception:
        return LookupError(f"{pod.name} was not surveyed")

    @property
    def data_pods(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.role != "sentinel"]

    @property
    def sentinel_pods(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.role == "sentinel"]

    def replication(self, pod: Pod) -> Replication | Exception:
        if pod.name not in self.repl:
            try:
                self.repl[pod.name] = self.probe.replication(pod) if self.probe else self._unread(pod)
            except READ_ERRORS as exc:
                self.repl[pod.name] = exc
        return self.repl[pod.name]

    def view(self, pod: Pod) -> SentinelView | Exception:
        if pod.name not in self.views:
            try:
                self.views[pod.name] = self.probe.view(pod) if self.probe else self._unread(pod)
            except READ_ERRORS as exc:
                self.views[pod.name] = exc
        return self.views[pod.name]

    def priority(self, pod: Pod) -> int:
        """The pod's replica-priority; a failed read raises (the round waits)."""
        if pod.name not in self.prios:
            try:
                self.prios[pod.name] = self.probe.priority(pod) if self.probe else self._unread(pod)
            except READ_ERRORS as exc:
                self.prios[pod.name] = exc
        found = self.prios[pod.name]
        if isinstance(found, Exception):
            raise found
        return found

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

    def stale(self) -> dict[str, list[str]]:
        """Sentinel -> its stale entries, for the sentinels that hold any (needs a single master)."""
        master = self.master()
        return {
            s.name: entries
            for s in self.sentinel_pods
            if master is not None
            and isinstance(v := self.view(s), SentinelView)
            and (entries := self.stale_entries(v, master))
        }

    def sentinels_master(self, exclude: Pod | None = None) -> Pod | None:
        """The pod every answering sentinel names as master (None: none or no agreement)."""
        named = {
            v.master for s in self.sentinel_pods if isinstance(v := self.view(s), SentinelView) and v.master
        }
        pod = self.by_ip(next(iter(named))[0]) if len(named) == 1 else None
        return pod if pod is not None and pod is not exclude else None


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


# --- reading the live group ---------------------------------------------------------------------
class LiveProbe:
    """The Probe of a real group: one client per pod for the round, closed at its end. The
    executor writes through the same clients."""

    def __init__(self, env: RedisEnv) -> None:
        self.env = env
        self._clients: dict[str, Any] = {}

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

    def replication(self, pod: Pod) -> Replication:
        return self.data(pod).replication()

    def view(self, pod: Pod) -> SentinelView:
        return self.sentinel(pod).view()

    def priority(self, pod: Pod) -> int:
        return self.data(pod).priority()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def read_pods(env: RedisEnv) -> dict[str, Pod]:
    kube, g, key = env.kube, env.group, env.settings.taint_key
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
                port=ports[0] if ports else (SENTINEL_PORT if role == "sentinel" else REDIS_PORT),
                node=node,
                ready=any(c.type == "Ready" and c.status == "True" for c in raw.status.conditions or []),
                terminating=raw.metadata.deletion_timestamp is not None,
                retiring=retiring.get(node or "", False),
                annotations=dict(raw.metadata.annotations or {}),
            )
    return out


def survey(env: RedisEnv) -> tuple[Survey, LiveProbe]:
    probe = LiveProbe(env)
    return Survey(read_pods(env), probe=probe), probe
