"""What a roll did to a Redis Cluster, measured from outside the tool.

:class:`SlotCoverageMonitor` samples every node of a group (its StatefulSets' pods, read from the
sandbox store, so a pod's new IP is followed) every ``interval_s``: ``CLUSTER NODES`` and
``CLUSTER INFO`` of each, the slots no healthy master serves in that node's view, node ids that
are no pod of the group (temporary nodes), and the temporary pods themselves (where they ran,
whether a Service picked them up). :func:`cluster_report` turns it and a writer's report into
the numbers of the demo.

:class:`ProcessClusterWriter` is ``writers.ClusterWriter`` in a process of its own. In the sandbox's
process a writer thread shares the GIL with the API server, moto and the state machine, and its
latencies (measured: gaps of 0.6-1.0 s every ~2 s of a roll, failover or not) are the sandbox's,
not Redis's; a writer process measures what a client would see.

No upstream counterpart: a client's and an operator's view of a Redis Cluster during the roll.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE, REDIS_GROUP, REDIS_PORT, REDIS_TEMP_FOR

from ..redis.manifests import group_password
from ..redis.procs import CLUSTER_SLOTS, ClusterNodeInfo, parse_cluster_nodes
from .writers import Gap, WriterReport, p99

if TYPE_CHECKING:  # the writer process imports this module: keep it light
    from ..env import SandboxEnv

log = logging.getLogger(__name__)

_UNSERVED = {"fail", "fail?", "noaddr"}


def uncovered(view: list[ClusterNodeInfo], answered: Set[str] | None = None) -> int:
    """Slots no live master serves, in one node's view. A master serves nothing when it is flagged
    fail/fail?/noaddr, or when this node's cluster-bus link to it is down: a master that just died
    keeps its plain `master` flag until cluster-node-timeout passes (PFAIL) and a majority agrees
    (FAIL), while every request for its slots already fails. Links are also down while they are
    (re)established, to a live node or from a node that just restarted, so a caller that probes
    the nodes itself passes the ids that `answered`: a down link then counts only for a node that
    did not answer."""
    covered = bytearray(CLUSTER_SLOTS)
    for n in view:
        if "master" not in n["flags"] or n["flags"] & _UNSERVED:
            continue
        if n["link_state"] != "connected" and (answered is None or n["id"] not in answered):
            continue
        for a, b in n["slots"]:
            covered[a : b + 1] = b"\x01" * (b - a + 1)
    return CLUSTER_SLOTS - sum(covered)


@dataclass
class _Sample:
    ids: dict[str, str] = field(default_factory=dict)  # pod -> its own node id
    masters: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # pod -> slots
    foreign: dict[str, set[str]] = field(default_factory=dict)  # pod -> ids no group pod has


class SlotCoverageMonitor:
    """Bounded sampler of a Redis Cluster group during a roll (a daemon thread)."""

    def __init__(
        self, env: SandboxEnv, namespace: str, group: str, *, interval_s: float = 0.2, timeout_s: float = 0.5
    ) -> None:
        self.env, self.namespace, self.group = env, namespace, group
        self.interval_s, self.timeout_s = interval_s, timeout_s
        sets = [
            s
            for s in env.sandbox.store.all("statefulsets")
            if s["metadata"].get("namespace") == namespace
            and (s["metadata"].get("annotations") or {}).get(REDIS_GROUP) == group
        ]
        if not sets:
            raise ValueError(f"no StatefulSet of Redis group {namespace}/{group}")
        self.pods = sorted(
            f"{s['metadata']['name']}-{i}" for s in sets for i in range(s["spec"].get("replicas", 1))
        )
        self._password = group_password(env.sandbox, sets[0])
        self._clients: dict[str, Any] = {}  # redis.Redis; its execute_command is untyped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.checks = 0  # samples in which every pod answered
        self.samples = 0
        self.uncovered_max = 0
        # (offset s, pod, slots, each master in that view: name:flags:link:probe), the first 20
        self.uncovered_seen: list[tuple[float, str, int, list[str]]] = []
        self.state_not_ok = 0  # node samples with cluster_state other than ok
        self.unreachable = 0  # node samples that did not answer (a pod restarting)
        self.masters_away_max = 0  # most masters of the start away from their slots at once
        self.last_foreign_seen: float | None = None  # monotonic
        self.foreign_ids: set[str] = set()
        self.temp_pods: dict[str, dict[str, Any]] = {}
        self._t0 = 0.0
        first = self._sample()
        if len(first.ids) != len(self.pods):
            raise RuntimeError(f"not every pod of {namespace}/{group} answers: {sorted(first.ids)}")
        self.start_ids = dict(first.ids)
        self.start_masters = dict(first.masters)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SlotCoverageMonitor:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"slots-{self.group}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> SlotCoverageMonitor:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sample(record=True)
            except Exception:  # a sampler must outlive any one bad sample
                log.exception("slot coverage sample failed")

    # --- one sample --------------------------------------------------------------------------
    def _client(self, ip: str) -> Any:
        c = self._clients.get(ip)
        if c is None:
            c = self._clients[ip] = redis.Redis(
                host=ip,
                port=REDIS_PORT,
                password=self._password,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        return c

    def _temp_ids(self) -> set[str]:
        """Node ids of the temporary pods that answer now (a temporary node may hold slots)."""
        out: set[str] = set()
        for pod in self.env.sandbox.store.all("pods"):
            md = pod["metadata"]
            ip = (pod.get("status") or {}).get("podIP")
            if (
                md.get("namespace") != self.namespace
                or REDIS_TEMP_FOR not in (md.get("labels") or {})
                or not ip
            ):
                continue
            try:
                out.add(str(self._client(ip).execute_command("CLUSTER", "MYID")))
            except (redis.RedisError, OSError):
                self._clients.pop(ip, None)
        return out

    def _ips(self) -> dict[str, str]:
        out = {}
        for name in self.pods:
            pod = self.env.sandbox.store.get("pods", self.namespace, name)
            ip = ((pod or {}).get("status") or {}).get("podIP")
            if pod is not None and ip and not pod["metadata"].get("deletionTimestamp"):
                out[name] = ip
        return out

    def _sample(self, record: bool = False) -> _Sample:
        s = _Sample()
        views: dict[str, list[ClusterNodeInfo]] = {}
        states: dict[str, str] = {}
        for name, ip in self._ips().items():
            try:
                c = self._client(ip)
                views[name] = parse_cluster_nodes(str(c.execute_command("CLUSTER", "NODES")))
                raw = str(c.execute_command("CLUSTER", "INFO"))
                states[name] = next(
                    (
                        ln.split(":", 1)[1].strip()
                        for ln in raw.splitlines()
                        if ln.startswith("cluster_state:")
                    ),
                    "?",
                )
            except (redis.RedisError, OSError):
                self._clients.pop(ip, None)
        for name, view in views.items():
            me = next((n for n in view if "myself" in n["flags"]), None)
            if me is not None:
                s.ids[name] = me["id"]
                if "master" in me["flags"] and me["slots"]:
                    s.masters[name] = sorted(me["slots"])
        if not record:
            return s
        known = set(self.start_ids.values())
        now = time.monotonic()
        with self._lock:
            self.samples += 1
            self.unreachable += len(self.pods) - len(views)
            if len(views) == len(self.pods):
                self.checks += 1
            away = [m for m, slots in self.start_masters.items() if s.masters.get(m) != slots]
            self.masters_away_max = max(self.masters_away_max, len(away))
            answered = set(s.ids.values()) | self._temp_ids()
            for name, view in views.items():
                missing = uncovered(view, answered)
                if missing:
                    self.uncovered_max = max(self.uncovered_max, missing)
                    if len(self.uncovered_seen) < 20:
                        names = {i: p for p, i in self.start_ids.items()}
                        why = [
                            f"{names.get(n['id'], n['id'][:8])}:{','.join(sorted(n['flags']))}:{n['link_state']}"
                            f":{'answered' if n['id'] in answered else 'silent'}"
                            for n in view
                            if "master" in n["flags"] and n["slots"]
                        ]
                        self.uncovered_seen.append((round(now - self._t0, 2), name, missing, why))
                if states.get(name) != "ok":
                    self.state_not_ok += 1
                foreign = {n["id"] for n in view} - known
                if foreign:
                    s.foreign[name] = foreign
                    # A MEET leaves a short-lived entry with a random id: not a node of its own.
                    self.foreign_ids |= {
                        n["id"] for n in view if n["id"] in foreign and "handshake" not in n["flags"]
                    }
                    self.last_foreign_seen = now
            self._note_temp_pods()
        return s

    def _note_temp_pods(self) -> None:
        store = self.env.sandbox.store
        endpoint_ips = {
            a["ip"]
            for ep in store.all("endpoints")
            if ep["metadata"].get("namespace") == self.namespace
            for sub in ep.get("subsets") or []
            for a in (sub.get("addresses") or []) + (sub.get("notReadyAddresses") or [])
        }
        for pod in store.all("pods"):
            labels = pod["metadata"].get("labels") or {}
            if pod["metadata"].get("namespace") != self.namespace or REDIS_TEMP_FOR not in labels:
                continue
            node_name = pod["spec"].get("nodeName")
            node = store.get("nodes", None, node_name) if node_name else None
            rec = self.temp_pods.setdefault(
                pod["metadata"]["name"],
                {
                    "for": labels[REDIS_TEMP_FOR],
                    "node": None,
                    "zone": None,
                    "in_endpoints": False,
                    "owners": [],
                },
            )
            rec["owners"] = [o.get("kind") for o in pod["metadata"].get("ownerReferences") or []]
            if node is not None:
                rec["node"] = node_name
                rec["zone"] = (node["metadata"].get("labels") or {}).get(LABEL_TOPOLOGY_ZONE)
                rec["node_taints"] = [t["key"] for t in node["spec"].get("taints") or []]
            ip = (pod.get("status") or {}).get("podIP")
            rec["in_endpoints"] = bool(rec["in_endpoints"] or (ip and ip in endpoint_ips))

    # --- now ---------------------------------------------------------------------------------
    def current(self) -> _Sample:
        return self._sample()

    def foreign_now(self) -> dict[str, list[str]]:
        """Node ids no group pod had at the start, per pod whose view lists them (a fresh read)."""
        known = set(self.start_ids.values())
        out: dict[str, list[str]] = {}
        for name, ip in self._ips().items():
            try:
                view = parse_cluster_nodes(str(self._client(ip).execute_command("CLUSTER", "NODES")))
            except (redis.RedisError, OSError):
                out[name] = ["<no answer>"]
                continue
            extra = sorted({n["id"] for n in view} - known)
            if extra:
                out[name] = extra
        return out


# --- a writer in its own process -----------------------------------------------------------------
Write = tuple[int, float, float, bool]  # (i, monotonic start, monotonic end, acknowledged)


def _write_loop(
    startup: list[tuple[str, int]],
    password: str | None,
    prefix: str,
    interval_s: float,
    max_writes: int,
    max_seconds: float,
    stop: Any,
    out: Any,
) -> None:
    """The child process: SET <prefix>:<i> <i> through RedisCluster (default retries, it must
    follow MOVED), bounded in count and time; CLOCK_MONOTONIC is shared with the parent."""
    writes: list[Write] = []
    errors: Counter[str] = Counter()
    t_start = time.monotonic()
    try:
        rc = RedisCluster(
            startup_nodes=[ClusterNode(ip, port) for ip, port in startup],  # type: ignore[no-untyped-call]
            password=password,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            decode_responses=True,
        )
    except Exception as exc:  # reported to the parent, not lost in the child's stderr
        out.put((t_start, time.monotonic(), writes, {f"{type(exc).__name__} at start": 1}))
        return
    for i in range(max_writes):
        if stop.is_set() or time.monotonic() - t_start >= max_seconds:
            break
        t0 = time.monotonic()
        try:
            rc.set(f"{prefix}:{i}", i)
            ok = True
        except Exception as exc:  # every failure is data here
            ok = False
            errors[type(exc).__name__] += 1
        writes.append((i, t0, time.monotonic(), ok))
        stop.wait(interval_s)
    rc.close()
    out.put((t_start, time.monotonic(), writes, dict(errors)))


class ProcessClusterWriter:
    """``writers.ClusterWriter``'s contract (bounded SETs, ``stop()`` then ``verify()``, a
    ``WriterReport``) with the write loop in a spawned process; ``writes`` keeps every write's
    timing for per-window analysis (the benchmark's worst latency per failover)."""

    def __init__(
        self,
        startup_nodes: Sequence[tuple[str, int]],
        *,
        prefix: str = "w",
        interval_s: float = 0.005,
        max_writes: int = 20_000,
        max_seconds: float = 60.0,
        gap_threshold_ms: float = 250.0,
        password: str | None = None,
    ) -> None:
        self.startup_nodes = list(startup_nodes)
        self.prefix, self.interval_s = prefix, interval_s
        self.max_writes, self.max_seconds = max_writes, max_seconds
        self.gap_threshold_ms = gap_threshold_ms
        self._password = password
        ctx = mp.get_context("spawn")  # never fork a process full of threads
        self._stop, self._out = ctx.Event(), ctx.Queue()
        self._proc = ctx.Process(
            target=_write_loop,
            args=(
                self.startup_nodes,
                password,
                prefix,
                interval_s,
                max_writes,
                max_seconds,
                self._stop,
                self._out,
            ),
            daemon=True,
        )
        self.writes: list[Write] = []
        self._span = (0.0, 0.0)
        self._errors: dict[str, int] = {}
        self._lost: int | None = None

    def start(self) -> ProcessClusterWriter:
        self._proc.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> WriterReport:
        self._stop.set()
        try:
            t_start, t_end, writes, errors = self._out.get(timeout=timeout_s)
        except queue.Empty as exc:
            raise RuntimeError(f"the writer process sent nothing (exit code {self._proc.exitcode})") from exc
        self._proc.join(timeout_s)
        self.writes, self._span, self._errors = list(writes), (t_start, t_end), dict(errors)
        return self.report()

    @property
    def acked(self) -> list[int]:
        return [w[0] for w in self.writes if w[3]]

    def verify(self, startup_nodes: Sequence[tuple[str, int]]) -> int:
        """Acknowledged writes whose value is not ``str(i)``, read through ``startup_nodes``
        (the pods' current addresses: every original IP may have changed)."""
        rc = RedisCluster(
            startup_nodes=[ClusterNode(ip, port) for ip, port in startup_nodes],  # type: ignore[no-untyped-call]
            password=self._password,
            decode_responses=True,
        )
        acked, lost = self.acked, 0
        try:
            for k in range(0, len(acked), 1000):
                batch = acked[k : k + 1000]
                values = rc.mget_nonatomic([f"{self.prefix}:{i}" for i in batch])
                lost += sum(1 for i, v in zip(batch, values, strict=True) if v != str(i))
        finally:
            rc.close()
        self._lost = lost
        return lost

    def report(self) -> WriterReport:
        lat = sorted((w[2] - w[1]) * 1000 for w in self.writes)
        gaps: list[Gap] = []
        max_gap, last = 0.0, self._span[0]
        for _, _, done, ok in self.writes:
            if not ok:
                continue
            length = (done - last) * 1000
            max_gap = max(max_gap, length)
            if length > self.gap_threshold_ms:
                gaps.append(Gap(round(last - self._span[0], 3), last, round(length, 3)))
            last = done
        return WriterReport(
            attempted=len(self.writes),
            acked=len(self.acked),
            errors=sum(self._errors.values()),
            lost=self._lost,
            max_gap_ms=round(max_gap, 3),
            max_latency_ms=round(lat[-1], 3) if lat else 0.0,
            p99_latency_ms=round(p99(lat), 3),
            gaps=gaps,
            duration_s=round(self._span[1] - self._span[0], 3),
            error_types=dict(self._errors),
        )


def cluster_report(
    env: SandboxEnv,
    namespace: str,
    group: str,
    writer_report: WriterReport,
    monitor: SlotCoverageMonitor,
    leftover_wait_s: float = 65,
) -> dict[str, Any]:
    """The demo's Redis Cluster numbers. Waits until ``leftover_wait_s`` after a temporary node
    was last seen in any view (Redis 7.0 bans a forgotten id for 60 s: a node that missed the
    FORGET would bring it back after that), sampling all along, then reads every view once more.
    The monitor is stopped on return."""
    waited = 0.0
    if monitor.last_foreign_seen is not None:
        waited = max(0.0, leftover_wait_s - (time.monotonic() - monitor.last_foreign_seen))
        time.sleep(waited)
    monitor.stop()
    leftovers = monitor.foreign_now()
    now = monitor.current()
    monitor.stop()  # closes the clients of these last reads
    return {
        "acked_writes_lost": writer_report.lost,
        "max_write_latency_ms": writer_report.max_latency_ms,
        "leftover_temp_nodes": sum(len(v) for v in leftovers.values()),
        "uncovered_slots_max": monitor.uncovered_max,
        "uncovered_seen": monitor.uncovered_seen,
        "node_ids_kept": now.ids == monitor.start_ids,
        "masters_in_place": now.masters == monitor.start_masters,
        "acked_writes": writer_report.acked,
        "write_errors": writer_report.errors,
        "write_error_types": writer_report.error_types,
        "max_write_gap_ms": writer_report.max_gap_ms,
        "checks": monitor.checks,
        "masters_away_max": monitor.masters_away_max,
        "cluster_state_not_ok": monitor.state_not_ok,
        "temp_nodes_seen": len(monitor.foreign_ids),
        "temp_pods": monitor.temp_pods,
        "leftover_checked_s_after_last_temp": (
            None
            if monitor.last_foreign_seen is None
            else round(time.monotonic() - monitor.last_foreign_seen, 1)
        ),
        "leftovers": leftovers,
        "waited_s": round(waited, 1),
    }


__all__ = ["ProcessClusterWriter", "SlotCoverageMonitor", "cluster_report", "uncovered"]
