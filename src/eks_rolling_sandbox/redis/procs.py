"""Real ``redis-server`` processes for the sandbox: one process per Redis "pod".

Every process binds to its own loopback address (any 127.0.0.0/8 address is bindable on
Linux without configuration) and uses ``bind-source-addr`` so that peers see the pod IP as
the source of replication, cluster-bus and sentinel connections, as they would on EKS.
``data_dir`` plays the role of the pod's volume: ``dump.rdb``, ``nodes.conf`` and
``sentinel.conf`` live there and survive a restart on a new IP.

Every started process is kept in a module registry; :func:`stop_all` and an ``atexit`` hook
kill whatever is still running so the sandbox never leaves a process behind.

Upstream: redis-server's own configuration (redis.conf, sentinel.conf); no Kubernetes counterpart.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from eks_rolling.labels import REDIS_PORT, SENTINEL_PORT

log = logging.getLogger(__name__)

Mode = Literal["data", "sentinel", "cluster"]
Address = tuple[str, int]

CLUSTER_SLOTS = 16384

_POLL_S = 0.02


@dataclass
class SentinelMonitor:
    """One ``sentinel monitor`` block of a sentinel.conf."""

    name: str
    ip: str
    port: int
    quorum: int
    down_after_ms: int = 5000
    failover_timeout_ms: int = 10000
    parallel_syncs: int = 1
    auth_pass: str | None = field(default=None, repr=False)


@dataclass
class RedisConfig:
    """What a Redis "pod" runs with.

    ``port`` 0 means the mode's default (6379 for data/cluster, 26379 for sentinel); it is
    resolved at construction, so ``cfg.port`` is always the real port. Build restarted pods with
    ``dataclasses.replace(cfg, ip=new_ip)``.

    In sentinel mode ``password`` is the sentinel's own ``requirepass`` (clients then need it in
    ``sentinel_kwargs``); the monitored masters' password is ``SentinelMonitor.auth_pass``.
    """

    mode: Mode
    ip: str
    data_dir: Path
    port: int = 0
    replicaof: Address | None = None
    monitors: list[SentinelMonitor] = field(default_factory=list)
    password: str | None = field(default=None, repr=False)
    announce_ip: str | None = None
    cluster_node_timeout_ms: int = 5000
    extra: dict[str, str] = field(default_factory=dict)
    replica_priority: int | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.port == 0:
            self.port = SENTINEL_PORT if self.mode == "sentinel" else REDIS_PORT
        if self.mode == "sentinel" and self.replicaof is not None:
            raise ValueError("a sentinel cannot be a replica")
        if self.mode != "sentinel" and self.monitors:
            raise ValueError("only sentinels monitor masters")

    @property
    def address(self) -> Address:
        return (self.ip, self.port)

    @property
    def config_path(self) -> Path:
        return self.data_dir / ("sentinel.conf" if self.mode == "sentinel" else "redis.conf")

    @property
    def log_path(self) -> Path:
        return self.data_dir / ("sentinel.log" if self.mode == "sentinel" else "redis.log")


def _quote(value: str | Path) -> str:
    """Quote a value for redis.conf (parsed with sdssplitargs), so paths may hold spaces."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render_config(cfg: RedisConfig) -> str:
    """Return the config text for ``cfg`` (redis.conf, or sentinel.conf in sentinel mode)."""
    lines = [
        f"bind {cfg.ip}",
        f"bind-source-addr {cfg.ip}",
        f"port {cfg.port}",
        "protected-mode no",
        "daemonize no",
        f"dir {_quote(cfg.data_dir)}",
        f"logfile {_quote(cfg.log_path)}",
    ]
    if cfg.password is not None:
        lines.append(f"requirepass {_quote(cfg.password)}")
    extra = [f"{key} {value}" for key, value in cfg.extra.items()]
    if cfg.mode == "sentinel":
        # Extras first: options such as `sentinel resolve-hostnames yes` must precede the monitors.
        lines += extra + _sentinel_lines(cfg)
    else:
        # Extras last, so they override the defaults above (e.g. `appendonly yes`).
        lines += _data_lines(cfg) + extra
    return "\n".join(lines) + "\n"


def _data_lines(cfg: RedisConfig) -> list[str]:
    lines = [
        "dbfilename dump.rdb",
        # A save point makes SIGTERM write the RDB (with repl id/offset) so a restarted replica
        # can partially resync; AOF would force a full sync (anchors-redis 5.3).
        "save 3600 1",
        "appendonly no",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        "shutdown-timeout 10",
    ]
    if cfg.password is not None:
        lines.append(f"masterauth {_quote(cfg.password)}")
    if cfg.replicaof is not None:
        lines.append(f"replicaof {cfg.replicaof[0]} {cfg.replicaof[1]}")
    if cfg.replica_priority is not None:
        lines.append(f"replica-priority {cfg.replica_priority}")
    if cfg.announce_ip is not None:
        lines.append(f"replica-announce-ip {cfg.announce_ip}")
    if cfg.mode == "cluster":
        lines += [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {cfg.cluster_node_timeout_ms}",
        ]
        if cfg.announce_ip is not None:
            lines.append(f"cluster-announce-ip {cfg.announce_ip}")
    return lines


def _sentinel_lines(cfg: RedisConfig) -> list[str]:
    lines: list[str] = []
    if cfg.password is not None:  # sentinels authenticate to each other with it
        lines.append(f"sentinel sentinel-pass {_quote(cfg.password)}")
    if cfg.announce_ip is not None:
        lines.append(f"sentinel announce-ip {cfg.announce_ip}")
    for m in cfg.monitors:
        lines += [
            f"sentinel monitor {m.name} {m.ip} {m.port} {m.quorum}",
            f"sentinel down-after-milliseconds {m.name} {m.down_after_ms}",
            f"sentinel failover-timeout {m.name} {m.failover_timeout_ms}",
            f"sentinel parallel-syncs {m.name} {m.parallel_syncs}",
        ]
        if m.auth_pass is not None:
            lines.append(f"sentinel auth-pass {m.name} {_quote(m.auth_pass)}")
    return lines


# --------------------------------------------------------------------------- processes

_registry: set[RedisProcess] = set()
_registry_lock = threading.Lock()


class RedisProcess:
    """One ``redis-server`` (or sentinel) child process, in its own process group."""

    def __init__(self, cfg: RedisConfig, redis_server: str = "redis-server") -> None:
        self.cfg = cfg
        self.redis_server = redis_server
        self._proc: subprocess.Popen[bytes] | None = None
        self._term_sent = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisProcess({self.cfg.mode} {self.cfg.ip}:{self.cfg.port} pid={self.pid})"

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has exited (negative: killed by that signal)."""
        self._reap_if_exited()
        return self._proc.returncode if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        self._reap_if_exited()
        return self._proc is not None and self._proc.returncode is None

    def start(self) -> None:
        """Write the config into ``data_dir`` and spawn the server (does not wait for it)."""
        with self._lock:
            if self._proc is not None and self._proc.returncode is None:
                raise RuntimeError(f"{self!r} is already running")
            cfg = self.cfg
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            # Regenerated on every start: redis.conf behaves like a ConfigMap, and sentinels are
            # recreated from scratch monitoring by IP, as in production (stale replicas included).
            cfg.config_path.write_text(render_config(cfg))
            self._term_sent = False
            argv = [self.redis_server, str(cfg.config_path)]
            if cfg.mode == "sentinel":
                argv.append("--sentinel")
            with open(cfg.data_dir / "stdout.log", "ab") as out:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cfg.data_dir,
                    start_new_session=True,  # own process group: killpg also reaches fork children
                )
            with _registry_lock:
                _registry.add(self)
            log.info("started %s %s:%d pid %d", cfg.mode, cfg.ip, cfg.port, self._proc.pid)

    def client(self, socket_timeout: float = 2.0, **kwargs: Any) -> redis.Redis:
        """A plain client to this process (decoded responses, password applied)."""
        return redis.Redis(
            host=self.cfg.ip,
            port=self.cfg.port,
            password=self.cfg.password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            decode_responses=True,
            **kwargs,
        )

    def ping(self) -> bool:
        """One quick PING over TCP; never raises."""
        try:
            with self.client(socket_timeout=0.3, retry=Retry(NoBackoff(), 0)) as r:
                return bool(r.ping())
        except (redis.RedisError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Poll PING until it answers; False on timeout or if the process exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.ping():
                return True
            if not self.is_running or time.monotonic() >= deadline:
                log.warning("%r not ready (running=%s); see %s", self, self.is_running, self.cfg.log_path)
                return False
            time.sleep(0.05)

    def terminate(self) -> None:
        """Send SIGTERM once, without waiting (a second SIGTERM must not cut a shutdown short)."""
        with self._lock:
            self._terminate_locked()

    def _terminate_locked(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None or self._term_sent:
            return
        if not self._exited_unreaped(0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        self._term_sent = True

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM (redis saves the RDB and lets replicas catch up), SIGKILL after ``grace_s``.

        Idempotent; always reaps the process and kills its process group.
        """
        with self._lock:
            proc = self._proc
            if proc is None or proc.returncode is not None:
                return
            self._terminate_locked()
            if not self._exited_unreaped(grace_s):
                log.warning("%r did not exit within %.1fs of SIGTERM; killing", self, grace_s)
            self._kill_group_and_reap()
            log.info("stopped %r rc=%s", self, proc.returncode)

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash: no RDB save) and reap."""
        with self._lock:
            if self._proc is None or self._proc.returncode is not None:
                return
            self._kill_group_and_reap()
            log.info("killed %r", self)

    # The leader is reaped only after its group has been SIGKILLed: while it is an unreaped
    # zombie its pid (== pgid) cannot be reused, so killpg can never hit an unrelated group.
    def _exited_unreaped(self, timeout_s: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                res = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            if res is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    def _kill_group_and_reap(self) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            log.error("%r survived SIGKILL", self)
            return
        with _registry_lock:
            _registry.discard(self)

    def _reap_if_exited(self) -> None:
        # Non-blocking: an unexpected exit (crash, external kill) is reaped here, with its group.
        if self._proc is None or self._proc.returncode is not None:
            return
        if self._lock.acquire(blocking=False):
            try:
                if self._proc.returncode is None and self._exited_unreaped(0):
                    self._kill_group_and_reap()
            finally:
                self._lock.release()


def running_processes() -> list[RedisProcess]:
    """Every process started here that has not been stopped yet."""
    with _registry_lock:
        return list(_registry)


def stop_all(grace_s: float = 0.0) -> None:
    """Stop every process still running; ``grace_s`` 0 means SIGKILL straight away."""
    procs = running_processes()
    if grace_s <= 0:
        for p in procs:
            p.kill()
    else:
        stop_many(procs, grace_s)


def stop_many(procs: Iterable[RedisProcess], grace_s: float = 15.0) -> None:
    """SIGTERM all of ``procs`` at once, then stop (and reap) each: faster than one by one."""
    procs = list(procs)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.stop(grace_s)
        except Exception:  # best effort: one failure must not leave the others running
            log.exception("could not stop %r", p)


atexit.register(stop_all)


# --------------------------------------------------------------------------- helpers


def admin_client(ip: str, port: int, password: str | None, timeout_s: float = 2.0) -> redis.Redis:
    return redis.Redis(
        host=ip,
        port=port,
        password=password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),  # admin helpers poll; a retry would only hide the timing
    )


def wait_until(pred: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``pred`` until it returns true (True) or ``timeout_s`` passes (False).

    Redis and socket errors raised by ``pred`` count as "not yet" (nodes restarting).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if pred():
                return True
        except (redis.RedisError, OSError) as exc:
            log.debug("wait_until: %s", exc)
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def info(ip: str, port: int, section: str = "default", password: str | None = None) -> dict[str, Any]:
    """Parsed ``INFO <section>`` of one node."""
    with admin_client(ip, port, password) as r:
        result: dict[str, Any] = r.info(section)
        return result


class ClusterNodeInfo(TypedDict):
    """One parsed line of ``CLUSTER NODES``."""

    id: str
    ip: str
    port: int
    cport: int
    flags: set[str]
    master_id: str | None
    config_epoch: int
    link_state: str
    slots: list[tuple[int, int]]


def parse_cluster_nodes(text: str) -> list[ClusterNodeInfo]:
    """Parse ``CLUSTER NODES`` output; migrating/importing slot markers are ignored.

    Not shared with the runtime's `eks_rolling.redis.cluster.parse_nodes` on purpose: the sandbox
    checks the runtime's work, so a parsing bug there must not also blind the checker."""
    nodes: list[ClusterNodeInfo] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split(",", 1)[0]  # drop ",hostname"
        hostport, _, cport = addr.partition("@")
        host, _, port = hostport.rpartition(":")
        slots: list[tuple[int, int]] = []
        for token in parts[8:]:
            if token.startswith("["):
                continue
            first, _, last = token.partition("-")
            slots.append((int(first), int(last or first)))
        nodes.append(
            ClusterNodeInfo(
                id=parts[0],
                ip=host,
                port=int(port or 0),
                cport=int(cport or 0),
                flags=set(parts[2].split(",")),
                master_id=None if parts[3] == "-" else parts[3],
                config_epoch=int(parts[6]),
                link_state=parts[7],
                slots=slots,
            )
        )
    return nodes


def cluster_nodes(ip: str, port: int, password: str | None = None) -> list[ClusterNodeInfo]:
    """``CLUSTER NODES`` of one node, parsed."""
    with admin_client(ip, port, password) as r:
        # Two-word form: redis-py applies no response callback, so we get the raw text.
        raw = r.execute_command("CLUSTER", "NODES")
    return parse_cluster_nodes(str(raw))


def cluster_info(ip: str, port: int, password: str | None = None) -> dict[str, str]:
    """``CLUSTER INFO`` of one node as a flat dict."""
    with admin_client(ip, port, password) as r:
        raw = str(r.execute_command("CLUSTER", "INFO"))
    pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {k: v.strip() for k, v in pairs}


@dataclass
class ClusterLayout:
    """What :func:`cluster_create` built."""

    node_ids: dict[Address, str]
    masters: list[Address]
    replica_of: dict[Address, Address]
    slots: dict[Address, tuple[int, int]]


def _split_slots(n_masters: int) -> list[tuple[int, int]]:
    # Same split as redis-cli --cluster create: 3 masters -> 0-5460, 5461-10922, 10923-16383.
    per = CLUSTER_SLOTS / n_masters
    ranges: list[tuple[int, int]] = []
    first, cursor = 0, 0.0
    for i in range(n_masters):
        last = round(cursor + per - 1)
        if last >= CLUSTER_SLOTS or i == n_masters - 1:
            last = CLUSTER_SLOTS - 1
        ranges.append((first, last))
        cursor += per
        first = last + 1
    return ranges


def _prepare_cluster_node(
    addr: Address, epoch: int, slots: tuple[int, int] | None, password: str | None
) -> str:
    """Check a node is fresh, give it a distinct config epoch and its slots; return its id."""
    ip, port = addr
    with admin_client(ip, port, password) as r:
        if cluster_info(ip, port, password).get("cluster_known_nodes") != "1" or r.dbsize() != 0:
            raise RuntimeError(f"{ip}:{port} is not a fresh cluster node")
        node_id = str(r.execute_command("CLUSTER", "MYID"))
        # Distinct epochs up front, as redis-cli does, so no epoch collision needs resolving.
        r.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        if slots is not None:
            r.execute_command("CLUSTER", "ADDSLOTSRANGE", slots[0], slots[1])
    return node_id


def _all_nodes_met(nodes: Sequence[Address], ids: set[str], password: str | None) -> bool:
    for ip, port in nodes:
        seen = cluster_nodes(ip, port, password)
        if {n["id"] for n in seen} != ids:
            return False
        if any(n["flags"] & {"handshake", "noaddr", "fail", "fail?"} for n in seen):
            return False
    return True


def _cluster_converged(
    nodes: Sequence[Address], expected_master: dict[str, str], password: str | None
) -> bool:
    for ip, port in nodes:
        ci = cluster_info(ip, port, password)
        if ci.get("cluster_state") != "ok" or ci.get("cluster_slots_ok") != str(CLUSTER_SLOTS):
            return False
        seen = {n["id"]: n for n in cluster_nodes(ip, port, password)}
        for node_id, master_id in expected_master.items():
            if seen[node_id]["master_id"] != master_id or "slave" not in seen[node_id]["flags"]:
                return False
    return True


def cluster_create(
    nodes: Sequence[Address], replicas: int = 1, password: str | None = None, timeout_s: float = 30.0
) -> ClusterLayout:
    """Create a Redis Cluster from fresh cluster-mode nodes, with redis-py only (no redis-cli).

    The first ``len(nodes) // (replicas + 1)`` entries become masters and get the 16384 slots
    split evenly (redis-cli's split). The remaining entries are replicas assigned round-robin:
    the k-th replica replicates master ``k % n_masters``. To keep a master and its replica on
    different "hosts", order ``nodes`` accordingly (e.g. masters on a, b, c, then replicas on
    b, c, a). Returns once every node reports ``cluster_state:ok`` with all slots covered, every
    node agrees on the roles, and every replica's link to its master is up.
    """
    n_masters = len(nodes) // (replicas + 1)
    if n_masters < 1:
        raise ValueError(f"{len(nodes)} nodes cannot hold a master with {replicas} replicas each")
    if len(set(nodes)) != len(nodes):
        raise ValueError("duplicate node addresses")
    deadline = time.monotonic() + timeout_s
    masters = list(nodes[:n_masters])
    replica_of = {node: masters[k % n_masters] for k, node in enumerate(nodes[n_masters:])}
    slot_ranges = dict(zip(masters, _split_slots(n_masters), strict=True))

    node_ids = {
        addr: _prepare_cluster_node(addr, epoch, slot_ranges.get(addr), password)
        for epoch, addr in enumerate(nodes, start=1)
    }
    # Every node meets every later one: one MEET would do, but gossip takes seconds to fill in
    # the mesh, and a direct MEET per pair converges in a few hundred milliseconds.
    for i, addr in enumerate(nodes):
        with admin_client(*addr, password) as r:
            for ip, port in nodes[i + 1 :]:
                r.execute_command("CLUSTER", "MEET", ip, port)
    ids = set(node_ids.values())
    if not wait_until(lambda: _all_nodes_met(nodes, ids, password), deadline - time.monotonic(), 0.1):
        raise TimeoutError("cluster nodes did not all meet in time")

    for (ip, port), master in replica_of.items():
        with admin_client(ip, port, password) as r:
            r.execute_command("CLUSTER", "REPLICATE", node_ids[master])
    expected_master = {node_ids[r]: node_ids[m] for r, m in replica_of.items()}

    def ready() -> bool:
        return _cluster_converged(nodes, expected_master, password) and all(
            info(ip, port, "replication", password).get("master_link_status") == "up"
            for ip, port in replica_of
        )

    if not wait_until(ready, deadline - time.monotonic(), 0.1):
        raise TimeoutError("cluster did not reach cluster_state:ok with all replicas in sync in time")
    log.info("cluster of %d nodes created (%d masters)", len(nodes), n_masters)
    return ClusterLayout(node_ids=node_ids, masters=masters, replica_of=replica_of, slots=slot_ranges)


def replica_synced(replica: Address, master: Address, password: str | None = None) -> bool:
    """Replica link up, no sync running, and its processed offset equals the master's offset.

    Exact only while writes are paused (anchors-redis section 3); without a pause, poll it.
    """
    r = info(*replica, section="replication", password=password)
    m = info(*master, section="replication", password=password)
    return bool(
        r.get("master_link_status") == "up"
        and r.get("master_sync_in_progress") == 0
        and r.get("slave_repl_offset") == m.get("master_repl_offset")
    )
