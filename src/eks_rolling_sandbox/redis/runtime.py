"""The kubelet's process runtime for Redis pods: real ``redis-server`` processes per pod.

A pod is backed by a process when its annotation ``sandbox.eks-rolling.io/process`` is one of

* ``redis``: a data node of a Sentinel group (master or replica),
* ``sentinel``: a Redis Sentinel,
* ``redis-cluster``: a Redis Cluster node.

Storage. The first volume backed by a PersistentVolumeClaim (the one named ``data`` if there
are several) is resolved PVC -> PV through the store and mapped to ``<root>/volumes/<pv>/``: it
survives rescheduling like an EBS volume, and the scheduler only brings it back in its zone.
``dump.rdb`` and ``nodes.conf`` live there. A pod without a PVC (sentinels, a temporary cluster
node on an emptyDir) gets ``<root>/ephemeral/<pod-uid>/``: kept across container restarts of
that pod, lost with the pod, like an emptyDir.

Configuration contract: environment variables of the pod's first container, the way a chart
passes them. Values may be literal (``value``) or ``valueFrom`` a ``secretKeyRef``,
``configMapKeyRef`` or ``fieldRef`` (``status.podIP``, ``metadata.name``,
``metadata.namespace``, ``spec.nodeName``), resolved from the store at start.

==============================  ================================================================
``REDIS_PASSWORD``              ``requirepass``/``masterauth`` of data and cluster nodes, and the
                                sentinels' ``auth-pass`` for the monitored master. Default none.
``REDIS_SENTINEL_PASSWORD``     the sentinels' own ``requirepass`` (and what data pods use to ask
                                them at start). Default none: sentinels are open.
``REDIS_MASTER_SET``            sentinel master name. Default ``mymaster``.
``REDIS_MASTER_HOST``           Service whose ready endpoint (``Endpoints.subsets[].addresses``,
                                which holds not-ready pods too when the Service publishes them) is
                                the initial master; resolved to an IP at start, as in production.
``REDIS_MASTER_PORT``           default 6379.
``REDIS_SENTINEL_HOST``         Service of the sentinels (port 26379), asked at start.
``REDIS_SENTINEL_QUORUM``       default 2.
``REDIS_SENTINEL_DOWN_AFTER_MS``  default 5000.
``REDIS_SENTINEL_FAILOVER_TIMEOUT_MS``  default 10000.
``REDIS_ROLE``                  data pods on first boot: ``master`` or ``replica`` (default).
``REDIS_REPLICA_PRIORITY``      optional ``replica-priority``.
``REDIS_AOF_ENABLED``           ``yes`` turns on ``appendonly`` (restarts then resync fully).
``REDIS_CLUSTER_ANNOUNCE_IP``   cluster nodes: ``true`` announces the pod IP, an IP announces
                                that IP, anything else (default) announces nothing, which
                                reproduces redis/redis#4645 (a moved node keeps its old IP in
                                its own ``myself`` entry).
``REDIS_CLUSTER_NODE_TIMEOUT``  cluster nodes, ms. Default 5000.
==============================  ================================================================

Start scripts (emulated, bitnami ``start-node.sh``/``start-sentinel.sh``):

* data pod: ask every endpoint of ``REDIS_SENTINEL_HOST`` ``SENTINEL GET-MASTER-ADDR-BY-NAME``
  (short timeouts; the most common answer wins). An answer other than this pod's IP makes it
  ``replicaof`` that address, so an ex-master never comes back as a second master. With no
  answer (first boot) ``REDIS_ROLE`` decides: ``master`` starts alone, ``replica`` follows the
  resolved ``REDIS_MASTER_HOST``. Caveat, as in production with IPs: a master pod deleted
  *without* a failover comes back as a replica of its own dead IP, because the sentinels still
  report that IP.
* sentinel pod: monitor the master the other sentinels report, else ``REDIS_MASTER_HOST``
  resolved to an IP. Always by IP, with a fresh config on every start, so a restarted replica
  leaves a stale ``s_down`` entry and restarting a sentinel clears it, as in the field report.
  Its ``sentinel myid`` is derived from ``<namespace>/<pod name>`` (bitnami derives it from the
  hostname), so its peers see a restarted sentinel as an address switch, not a new sentinel.
* cluster pod: ``cluster-enabled`` with ``nodes.conf`` on the volume.

``start`` never blocks on the cluster: when something it needs is not there yet (master
endpoint, bound PVC, Secret), the pod is recorded as waiting, ``alive`` stays true and every
``probe`` retries, so the kubelet keeps the pod Running but not Ready until the process starts.

The runtime needs the store: build it before the Sandbox and call :meth:`RedisRuntime.attach`
with ``sandbox.store``. Passwords are never logged.

Upstream: the kubelet's container runtime (CRI) for these pods, and EBS volumes that follow a pod
within its zone.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import redis

from eks_rolling.labels import REDIS_PORT, SENTINEL_PORT

from ..api.store import Obj
from .procs import Address, RedisConfig, RedisProcess, SentinelMonitor, admin_client

log = logging.getLogger(__name__)


class StoreView(Protocol):
    """The part of the sandbox ``Store`` the runtime reads (PVCs, Secrets, ConfigMaps, Endpoints)."""

    def get(self, plural: str, namespace: str | None, name: str) -> Obj | None: ...


PROCESS_ANNOTATION = "sandbox.eks-rolling.io/process"
Kind = Literal["redis", "sentinel", "redis-cluster"]
KINDS: tuple[Kind, ...] = ("redis", "sentinel", "redis-cluster")

DEFAULT_MASTER_SET = "mymaster"
_TRUE = {"true", "yes", "1", "on"}
# Each sentinel asked at start gets this much per connect and per reply: on loopback a missing
# listener refuses at once, so only a hung process costs the timeout.
_ASK_TIMEOUT_S = 0.15
# probe() retries a deferred start at most this often (the kubelet probes every ~0.1 s).
_RETRY_INTERVAL_S = 0.25


class Deferred(Exception):
    """A start cannot happen yet (missing endpoint, unbound PVC, missing Secret)."""


def read_secret(store: StoreView, namespace: str, name: str, key: str) -> str | None:
    """One key of a Secret, decoded (``data`` is base64 as the API stores it; ``stringData`` too)."""
    secret = store.get("secrets", namespace, name)
    if secret is None:
        return None
    data = secret.get("data") or {}
    if key in data:
        return base64.b64decode(data[key]).decode()
    string_data = secret.get("stringData") or {}
    value = string_data.get(key)
    return None if value is None else str(value)


def endpoint_ips(store: StoreView, namespace: str, service: str) -> list[str]:
    """IPs of a Service's ready addresses, sorted (what headless-Service DNS would return)."""
    ep = store.get("endpoints", namespace, service)
    if ep is None:
        return []
    ips = {a["ip"] for subset in ep.get("subsets") or [] for a in subset.get("addresses") or []}
    return sorted(ips)


@dataclass
class _Pod:
    uid: str
    namespace: str
    name: str
    kind: Kind
    ip: str
    proc: RedisProcess | None = None
    waiting: str | None = None  # why the process has not started yet
    last_attempt: float = 0.0
    stopping: bool = False


class RedisRuntime:
    """Implements the kubelet's ``ProcessRuntime`` for Redis, Sentinel and Redis Cluster pods."""

    def __init__(
        self,
        root: str | Path,
        store: StoreView | None = None,
        *,
        redis_server: str = "redis-server",
    ) -> None:
        self.root = Path(root)
        self.redis_server = redis_server
        self._store = store
        self._pods: dict[str, _Pod] = {}
        self._lock = threading.RLock()
        self._closed = False

    def attach(self, store: StoreView) -> RedisRuntime:
        """Give the runtime the sandbox's store (PVCs, Secrets, Endpoints are read from it)."""
        self._store = store
        return self

    @property
    def store(self) -> StoreView:
        if self._store is None:
            raise RuntimeError("RedisRuntime is not attached to a store: call attach(sandbox.store)")
        return self._store

    # --- ProcessRuntime --------------------------------------------------------------------------
    def wants(self, pod: Obj) -> bool:
        return _kind(pod) is not None

    def start(self, pod: Obj, ip: str) -> None:
        """Spawn the pod's process without waiting for it; defer if the cluster is not ready."""
        kind = _kind(pod)
        if kind is None:
            return
        md = pod["metadata"]
        with self._lock:
            if self._closed:
                return
            entry = self._pods.get(md["uid"])
            if entry is not None and entry.proc is not None and entry.proc.is_running:
                return  # already running: nothing to restart
            entry = _Pod(md["uid"], md["namespace"], md["name"], kind, ip)
            self._pods[entry.uid] = entry
            self._try_start(entry, pod)

    def probe(self, pod: Obj) -> bool:
        with self._lock:
            entry = self._pods.get(pod["metadata"]["uid"])
            if entry is None or entry.stopping:
                return False
            if entry.proc is None:
                if time.monotonic() - entry.last_attempt >= _RETRY_INTERVAL_S:
                    self._try_start(entry, pod)
                return False
            proc = entry.proc
        return proc.ping()

    def alive(self, pod: Obj) -> bool:
        with self._lock:
            entry = self._pods.get(pod["metadata"]["uid"])
            if entry is None:
                return False
            # A deferred start is a container still starting, not a dead one.
            return entry.proc is None or entry.proc.is_running

    def begin_stop(self, pod: Obj, grace_s: float) -> None:
        """SIGTERM (redis saves its RDB); the kubelet SIGKILLs through kill() after the grace."""
        with self._lock:
            entry = self._pods.get(pod["metadata"]["uid"])
            if entry is None:
                return
            entry.stopping = True
            if entry.proc is not None:
                entry.proc.terminate()
                log.info("SIGTERM %s/%s (grace %.0fs)", entry.namespace, entry.name, grace_s)

    def stopped(self, pod: Obj) -> bool:
        with self._lock:
            uid = pod["metadata"]["uid"]
            entry = self._pods.get(uid)
            if entry is None:
                return True
            if entry.proc is not None and entry.proc.is_running:
                return False
            del self._pods[uid]
            return True

    def kill(self, uid: str) -> None:
        with self._lock:
            entry = self._pods.pop(uid, None)
        if entry is not None and entry.proc is not None:
            entry.proc.kill()

    def running_uids(self) -> set[str]:
        with self._lock:
            return {uid for uid, e in self._pods.items() if e.proc is not None and e.proc.is_running}

    # --- the rest ------------------------------------------------------------------------------
    def close(self) -> None:
        """SIGKILL every process of this runtime; data directories are left in place."""
        with self._lock:
            self._closed = True
            entries = list(self._pods.values())
            self._pods.clear()
        for entry in entries:
            if entry.proc is not None:
                entry.proc.kill()

    def process(self, uid: str) -> RedisProcess | None:
        """The process backing a pod (None while waiting or once gone)."""
        with self._lock:
            entry = self._pods.get(uid)
            return entry.proc if entry is not None else None

    def waiting_reason(self, uid: str) -> str | None:
        """Why a pod's process has not started yet, or None."""
        with self._lock:
            entry = self._pods.get(uid)
            return entry.waiting if entry is not None else None

    def data_dir(self, pod: Obj) -> Path:
        """Where the pod's data lives: its PV's directory, or an ephemeral one without a PVC."""
        ns = pod["metadata"]["namespace"]
        claim = _data_claim(pod)
        if claim is None:
            return self.root / "ephemeral" / str(pod["metadata"]["uid"])
        pvc = self.store.get("persistentvolumeclaims", ns, claim)
        pv_name = ((pvc or {}).get("spec") or {}).get("volumeName")
        if not pv_name:
            raise Deferred(f"PVC {claim} is not bound")
        return self.root / "volumes" / str(pv_name)

    # --- start scripts -------------------------------------------------------------------------
    def _try_start(self, entry: _Pod, pod: Obj) -> None:
        entry.last_attempt = time.monotonic()
        try:
            cfg = self._config(entry, pod)
        except Deferred as why:
            if entry.waiting != str(why):
                log.info("%s/%s waiting: %s", entry.namespace, entry.name, why)
            entry.waiting = str(why)
            return
        entry.waiting = None
        entry.proc = RedisProcess(cfg, self.redis_server)
        entry.proc.start()
        role = cfg.mode if cfg.replicaof is None else f"replica of {cfg.replicaof[0]}:{cfg.replicaof[1]}"
        log.info("%s/%s started at %s as %s", entry.namespace, entry.name, entry.ip, role)

    def _config(self, entry: _Pod, pod: Obj) -> RedisConfig:
        env = self._env(entry, pod)
        data_dir = self.data_dir(pod)
        password = env.get("REDIS_PASSWORD") or None
        if entry.kind == "redis-cluster":
            announce = env.get("REDIS_CLUSTER_ANNOUNCE_IP", "").strip()
            announce_ip = entry.ip if announce.lower() in _TRUE else announce if _is_ipv4(announce) else None
            return RedisConfig(
                mode="cluster",
                ip=entry.ip,
                data_dir=data_dir,
                password=password,
                announce_ip=announce_ip,
                cluster_node_timeout_ms=_int(env, "REDIS_CLUSTER_NODE_TIMEOUT", 5000),
                extra=_aof(env),
            )
        set_name = env.get("REDIS_MASTER_SET") or DEFAULT_MASTER_SET
        sentinel_password = env.get("REDIS_SENTINEL_PASSWORD") or None
        current = self._ask_sentinels(entry, env.get("REDIS_SENTINEL_HOST"), set_name, sentinel_password)
        if entry.kind == "sentinel":
            master = current or self._resolve_master(entry, env)
            return RedisConfig(
                mode="sentinel",
                ip=entry.ip,
                data_dir=data_dir,
                password=sentinel_password,
                # A stable id per pod (bitnami: sha1 of the hostname): a restarted sentinel with a
                # new IP is an address switch for its peers, not one more (stale) sentinel.
                extra={"sentinel myid": hashlib.sha1(f"{entry.namespace}/{entry.name}".encode()).hexdigest()},
                monitors=[
                    SentinelMonitor(
                        name=set_name,
                        ip=master[0],
                        port=master[1],
                        quorum=_int(env, "REDIS_SENTINEL_QUORUM", 2),
                        down_after_ms=_int(env, "REDIS_SENTINEL_DOWN_AFTER_MS", 5000),
                        failover_timeout_ms=_int(env, "REDIS_SENTINEL_FAILOVER_TIMEOUT_MS", 10000),
                        auth_pass=password,
                    )
                ],
            )
        replicaof: Address | None
        if current is not None:
            replicaof = None if current[0] == entry.ip else current
        elif env.get("REDIS_ROLE", "replica").lower() == "master":
            replicaof = None
        else:
            replicaof = self._resolve_master(entry, env)
        priority = env.get("REDIS_REPLICA_PRIORITY")
        return RedisConfig(
            mode="data",
            ip=entry.ip,
            data_dir=data_dir,
            password=password,
            replicaof=replicaof,
            replica_priority=int(priority) if priority else None,
            extra=_aof(env),
        )

    def _resolve_master(self, entry: _Pod, env: dict[str, str]) -> Address:
        service = env.get("REDIS_MASTER_HOST")
        if not service:
            raise Deferred("REDIS_MASTER_HOST is not set and no sentinel knows the master")
        port = _int(env, "REDIS_MASTER_PORT", REDIS_PORT)
        ips = [ip for ip in endpoint_ips(self.store, entry.namespace, service) if ip != entry.ip]
        if not ips:
            raise Deferred(f"service {service} has no ready endpoint")
        return (ips[0], port)

    def _ask_sentinels(
        self, entry: _Pod, service: str | None, set_name: str, password: str | None
    ) -> Address | None:
        """The master address most sentinels report (``SENTINEL GET-MASTER-ADDR-BY-NAME``), if any."""
        if not service:
            return None
        answers: Counter[Address] = Counter()
        for ip in endpoint_ips(self.store, entry.namespace, service):
            if ip == entry.ip:
                continue
            try:
                with admin_client(ip, SENTINEL_PORT, password, _ASK_TIMEOUT_S) as r:
                    reply: Any = r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", set_name)
            except (redis.RedisError, OSError):
                continue
            if reply:
                answers[(str(reply[0]), int(reply[1]))] += 1
        return answers.most_common(1)[0][0] if answers else None

    def _env(self, entry: _Pod, pod: Obj) -> dict[str, str]:
        containers = pod["spec"].get("containers") or []
        out: dict[str, str] = {}
        for var in (containers[0].get("env") if containers else None) or []:
            value = self._env_value(entry, pod, var)
            if value is not None:
                out[var["name"]] = value
        return out

    def _env_value(self, entry: _Pod, pod: Obj, var: Obj) -> str | None:
        if "value" in var:
            return str(var["value"])
        source = var.get("valueFrom") or {}
        for ref_kind, plural in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
            ref = source.get(ref_kind)
            if ref is None:
                continue
            if plural == "secrets":
                value = read_secret(self.store, entry.namespace, ref["name"], ref["key"])
            else:
                cm = self.store.get("configmaps", entry.namespace, ref["name"]) or {}
                raw = (cm.get("data") or {}).get(ref["key"])
                value = None if raw is None else str(raw)
            if value is None and not ref.get("optional"):
                # The kubelet's CreateContainerConfigError: retried until the object appears.
                raise Deferred(f"{ref_kind} {ref['name']}/{ref['key']} not found")
            return value
        field_path = (source.get("fieldRef") or {}).get("fieldPath")
        fields = {
            "status.podIP": entry.ip,
            "metadata.name": entry.name,
            "metadata.namespace": entry.namespace,
            "spec.nodeName": pod["spec"].get("nodeName", ""),
        }
        return fields.get(field_path) if field_path else None


def _kind(pod: Obj) -> Kind | None:
    value = (pod["metadata"].get("annotations") or {}).get(PROCESS_ANNOTATION)
    for kind in KINDS:
        if value == kind:
            return kind
    return None


def _data_claim(pod: Obj) -> str | None:
    claims = [
        (v.get("name"), v["persistentVolumeClaim"]["claimName"])
        for v in pod["spec"].get("volumes") or []
        if (v.get("persistentVolumeClaim") or {}).get("claimName")
    ]
    if not claims:
        return None
    return str(next((claim for name, claim in claims if name == "data"), claims[0][1]))


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    return int(value) if value else default


def _aof(env: dict[str, str]) -> dict[str, str]:
    return {"appendonly": "yes"} if env.get("REDIS_AOF_ENABLED", "").lower() in _TRUE else {}


def _is_ipv4(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)


__all__ = [
    "KINDS",
    "PROCESS_ANNOTATION",
    "Deferred",
    "RedisRuntime",
    "endpoint_ips",
    "read_secret",
]
