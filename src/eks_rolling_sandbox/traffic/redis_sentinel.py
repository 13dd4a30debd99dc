"""The Redis Sentinel part of the demo report: what a client writing through Sentinel saw during
the roll, and what the group looks like afterwards.

    writer = SentinelWriterProcess.for_group(env, "redis", "redis")   # before the roll
    writer.start(); ...roll...; report = writer.stop()                  # stop() also verifies
    sentinel_report(env, "redis", "redis", report)

The writer runs in its own process, so what it measures is Redis and the client, not the GIL of
the busy sandbox process (an in-process writer there sees 0.5-1 s stalls every few seconds).
Sentinel pods get new IPs when they move: the writer's client refreshes its sentinel list from
the peers the sentinels it knows report (SENTINEL SENTINELS), as clients with sentinel
discovery do, so it never ends up pointing at nothing.

The switchovers are read from the MoveRedisPods outputs in the executions' histories (each
records when it paused writes, wall clock), and matched with the writer's gaps.

No upstream counterpart: a Sentinel client's view of the group during the roll.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from eks_rolling.labels import (
    REDIS_GROUP,
    REDIS_MASTER_SET,
    REDIS_PORT,
    REDIS_ROLE,
    REDIS_SENTINEL_STATEFULSET,
    SENTINEL_PORT,
)

from ..api.store import Obj
from ..env import SandboxEnv
from ..redis.manifests import group_password
from ..redis.runtime import endpoint_ips
from .writers import SENTINEL_TIMEOUT_S, Address, SentinelWriter, WriterReport

# A write gap belongs to a switchover if it starts this close before the pause, or during it.
_BEFORE_S, _AFTER_S = 1.0, 3.0


class _FollowingSentinel(Sentinel):
    """redis-py's Sentinel over a list that follows the sentinels as they move (redis-py's own
    list is fixed): refreshed from `resolve` before each master discovery."""

    def __init__(self, resolve: Callable[[], list[Address]], **kwargs: Any) -> None:
        self._resolve = resolve
        self._current = resolve()
        super().__init__(self._current, **kwargs)  # type: ignore[no-untyped-call]

    def discover_master(self, service_name: str) -> Any:
        found = self._resolve()
        if found and set(found) != set(self._current):
            for client in self.sentinels:
                client.close()
            self._current = found
            self.sentinels = [redis.Redis(h, p, **self.sentinel_kwargs) for h, p in found]
        return super().discover_master(service_name)  # type: ignore[no-untyped-call]


class FollowingSentinelWriter(SentinelWriter):
    """A SentinelWriter whose sentinel list follows the sentinels (see above)."""

    def __init__(self, resolve: Callable[[], list[Address]], service_name: str, **kwargs: Any) -> None:
        super().__init__(resolve(), service_name, **kwargs)
        self._resolve_sentinels = resolve

    def _sentinel(self) -> Sentinel:
        # No retries to a sentinel (redis-py 8 retries 3 times with up to seconds of backoff): a
        # moved sentinel's old address must cost one refused connect, not a stall of seconds.
        kw: dict[str, Any] = {
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
        }
        if self._sentinel_password is not None:
            kw["password"] = self._sentinel_password
        return _FollowingSentinel(self._resolve_sentinels, sentinel_kwargs=kw)


def peer_resolver(
    initial: Sequence[Address], service_name: str, timeout_s: float = 0.5
) -> Callable[[], list[Address]]:
    """The sentinels of `service_name` as the first reachable known sentinel reports them
    (itself and its peers)."""
    known = sorted(initial)

    def resolve() -> list[Address]:
        nonlocal known
        for host, port in known:
            try:
                with redis.Redis(
                    host,
                    port,
                    socket_timeout=timeout_s,
                    socket_connect_timeout=timeout_s,
                    retry=Retry(NoBackoff(), 0),
                    decode_responses=True,
                ) as s:
                    peers = s.execute_command("SENTINEL", "SENTINELS", service_name)
            except (redis.RedisError, OSError):
                continue
            found = {(host, port)} | {(f["ip"], int(f["port"])) for f in map(_fields, peers)}
            known = sorted(found)
            break
        return list(known)

    return resolve


def _refresh(resolve: Callable[[], list[Address]], stop: Any) -> None:
    while not stop.wait(0.5):
        resolve()


def _write_in_child(
    sentinels: list[Address],
    service_name: str,
    password: str | None,
    kwargs: dict[str, Any],
    stop: Any,
    out: Any,
    settle_s: Any,
) -> None:
    try:
        resolve = peer_resolver(sentinels, service_name)
        writer = FollowingSentinelWriter(resolve, service_name, password=password, **kwargs)
        # Keep the sentinel list fresh between master discoveries too (a client following
        # sentinel announcements): sentinels may all move while the master connection holds.
        refresher = threading.Thread(target=_refresh, args=(resolve, stop), daemon=True)
        refresher.start()
        writer.start()
        stop.wait()
        writer.stop()
        time.sleep(settle_s.value)  # the last acknowledged writes replicate
        for attempt in range(20):  # the master may be moving right now: ask again
            try:
                writer.verify()
                break
            except (redis.RedisError, OSError):
                if attempt == 19:
                    raise
                time.sleep(0.5)
        out.put(writer.report())
    except BaseException as exc:  # the parent must hear why, not time out
        out.put(f"{type(exc).__name__}: {exc}")
        raise


class SentinelWriterProcess:
    """A bounded SentinelWriter (through redis-py's Sentinel client) in its own process.
    Its gap timestamps are CLOCK_MONOTONIC, comparable with this process's time.monotonic()."""

    def __init__(
        self, sentinels: Sequence[Address], service_name: str, *, password: str | None = None, **kwargs: Any
    ) -> None:
        ctx = mp.get_context("spawn")  # never fork a process full of threads
        self._stop, self._out, self._settle = ctx.Event(), ctx.Queue(), ctx.Value("d", 1.0)
        self._proc = ctx.Process(
            target=_write_in_child,
            args=(list(sentinels), service_name, password, kwargs, self._stop, self._out, self._settle),
            name="sentinel-writer",
            daemon=True,
        )
        self._report: WriterReport | None = None

    @classmethod
    def for_group(
        cls, env: SandboxEnv, namespace: str = "redis", group: str = "redis", **kwargs: Any
    ) -> SentinelWriterProcess:
        """A writer for a Sentinel group of the sandbox (kwargs: SentinelWriter's)."""
        master_set, service, password, _ = _group_info(env, namespace, group)
        sentinels = [(ip, SENTINEL_PORT) for ip in endpoint_ips(env.sandbox.store, namespace, service)]
        return cls(sentinels, master_set, password=password, **kwargs)

    def start(self) -> None:
        self._proc.start()

    def stop(self, settle_s: float = 1.0, timeout_s: float = 120.0) -> WriterReport:
        """Stop writing, let replication settle, verify every acknowledged write on the current
        master; the report has `lost` set."""
        self._settle.value = settle_s
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                got = self._out.get(timeout=0.5)
                if isinstance(got, str):
                    raise RuntimeError(f"the writer process failed: {got}")
                report: WriterReport = got
                break
            except queue.Empty:
                if not self._proc.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the writer process gave no report (exit code {self._proc.exitcode})"
                    ) from None
        self._proc.join(timeout=10)
        self._report = report
        return report

    def report(self) -> WriterReport:
        if self._report is None:
            raise RuntimeError("the writer has not been stopped yet")
        return self._report


def _group_sets(env: SandboxEnv, namespace: str, group: str) -> list[Obj]:
    return [
        s
        for s in env.sandbox.store.all("statefulsets")
        if s["metadata"]["namespace"] == namespace
        and (s["metadata"].get("annotations") or {}).get(REDIS_GROUP) == group
    ]


def _group_info(env: SandboxEnv, namespace: str, group: str) -> tuple[str, str, str | None, list[str]]:
    """(master set, sentinel Service, password, data StatefulSets) of a Sentinel group."""
    sets = _group_sets(env, namespace, group)
    if not sets:
        raise ValueError(f"no StatefulSets of Redis group {namespace}/{group}")
    ann = sets[0]["metadata"]["annotations"]
    sentinel_sts = ann.get(REDIS_SENTINEL_STATEFULSET) or next(
        s["metadata"]["name"] for s in sets if s["metadata"]["annotations"].get(REDIS_ROLE) == "sentinel"
    )
    data = [s["metadata"]["name"] for s in sets if s["metadata"]["annotations"].get(REDIS_ROLE) != "sentinel"]
    return (
        ann.get(REDIS_MASTER_SET, "mymaster"),
        sentinel_sts,
        group_password(env.sandbox, sets[0]),
        data,
    )


def sentinel_writer(
    env: SandboxEnv, namespace: str = "redis", group: str = "redis", **kwargs: Any
) -> SentinelWriter:
    """A bounded writer through a Sentinel-aware client for the group (kwargs: SentinelWriter's)."""
    master_set, service, password, _ = _group_info(env, namespace, group)
    store = env.sandbox.store

    def resolve() -> list[Address]:
        return [(ip, SENTINEL_PORT) for ip in endpoint_ips(store, namespace, service)]

    return FollowingSentinelWriter(resolve, master_set, password=password, **kwargs)


def _client(ip: str, port: int, password: str | None = None) -> redis.Redis:
    return redis.Redis(ip, port, password=password, socket_timeout=2.0, decode_responses=True)


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    items = list(raw or [])
    return {str(k): str(v) for k, v in zip(items[::2], items[1::2], strict=True)}


def recorded_switchovers(env: SandboxEnv, namespace: str, group: str) -> list[Obj]:
    """Every switchover of the group recorded by MoveRedisPods in any execution's history."""
    sfn = env.aws("stepfunctions")
    seen: dict[tuple[str, str, float], Obj] = {}
    for sm in sfn.list_state_machines()["stateMachines"]:
        for ex in sfn.list_executions(stateMachineArn=sm["stateMachineArn"])["executions"]:
            token = None
            while True:
                kw: Obj = {"executionArn": ex["executionArn"], "maxResults": 1000}
                if token:
                    kw["nextToken"] = token
                page = sfn.get_execution_history(**kw)
                for ev in page["events"]:
                    out = (ev.get("lambdaFunctionSucceededEventDetails") or {}).get("output")
                    if not out or '"switchovers"' not in out:
                        continue
                    for move in json.loads(out).get("moves") or []:
                        if move.get("namespace") != namespace or move.get("group") != group:
                            continue
                        for s in move.get("data", {}).get("switchovers", []):
                            seen[(s["from"], s["to"], float(s["paused_at"]))] = s
                token = page.get("nextToken")
                if not token:
                    break
    return sorted(seen.values(), key=lambda s: float(s["paused_at"]))


def switchover_gaps(writer: WriterReport, switchovers: Sequence[Obj]) -> list[float]:
    """The writer's longest gap around each switchover, in ms (0.0: none above its threshold)."""
    # CLOCK_MONOTONIC is machine-wide: the writer's process reads the same clock as this one.
    wall_minus_mono = time.time() - time.monotonic()
    out = []
    for s in switchovers:
        start = float(s["paused_at"]) - _BEFORE_S
        end = float(s["paused_at"]) + float(s.get("paused_ms", 0)) / 1000 + _AFTER_S
        gaps = [g.length_ms for g in writer.gaps if start <= g.started_at + wall_minus_mono <= end]
        out.append(max(gaps, default=0.0))
    return out


def sentinel_state(env: SandboxEnv, namespace: str, group: str) -> Obj:
    """The group as its sentinels see it: `stale_replicas` (entries in a sentinel's view that are
    no live data pod), `master_pod` (named by every sentinel and reporting role master),
    `quorum_ok`, `converged` (all that, plus every sentinel lists every other live data pod and
    knows every other sentinel) and per-sentinel detail."""
    master_set, service, password, data_sets = _group_info(env, namespace, group)
    store = env.sandbox.store
    pods = [
        p
        for p in store.all("pods")
        if p["metadata"]["namespace"] == namespace and "deletionTimestamp" not in p["metadata"]
    ]
    owner: dict[str, str | None] = {
        p["metadata"]["name"]: next((r.get("name") for r in p["metadata"].get("ownerReferences") or []), None)
        for p in pods
    }
    data_ips = {
        p["status"]["podIP"]: p["metadata"]["name"]
        for p in pods
        if owner[p["metadata"]["name"]] in data_sets and p["status"].get("podIP")
    }
    sentinel_ips = endpoint_ips(store, namespace, service)
    stale: list[str] = []
    masters: set[str] = set()
    quorum_ok, complete = True, True
    sentinels: dict[str, Obj] = {}
    for ip in sentinel_ips:
        name = next((p["metadata"]["name"] for p in pods if p["status"].get("podIP") == ip), ip)
        try:
            with _client(ip, SENTINEL_PORT) as s:
                addr = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_set)
                listed = [_fields(r) for r in s.execute_command("SENTINEL", "REPLICAS", master_set)]
                peers = [_fields(r) for r in s.execute_command("SENTINEL", "SENTINELS", master_set)]
                try:
                    quorum = str(s.execute_command("SENTINEL", "CKQUORUM", master_set))
                except redis.ResponseError as exc:
                    quorum = str(exc)
        except (redis.RedisError, OSError) as exc:
            sentinels[name] = {"error": str(exc)}
            quorum_ok = complete = False
            continue
        master_ip = str(addr[0]) if addr else ""
        masters.add(master_ip)
        quorum_ok = quorum_ok and quorum.startswith("OK")
        stale += [f"{name}: {r['ip']} ({r.get('flags')})" for r in listed if r["ip"] not in data_ips]
        healthy = {r["ip"] for r in listed if r.get("flags") == "slave"}
        complete = (
            complete
            and healthy == set(data_ips) - {master_ip}
            and {p["ip"] for p in peers} == set(sentinel_ips) - {ip}
        )
        sentinels[name] = {
            "master": data_ips.get(master_ip),
            "replicas": len(listed),
            "peers": len(peers),
            "quorum": quorum,
        }
    master_pod = data_ips.get(next(iter(masters))) if len(masters) == 1 else None
    if master_pod is not None:
        try:
            with _client(next(iter(masters)), REDIS_PORT, password) as m:
                if m.info("replication").get("role") != "master":
                    master_pod = None
        except (redis.RedisError, OSError):
            master_pod = None
    return {
        "stale_replicas": sorted(stale),
        "master_pod": master_pod,
        "quorum_ok": quorum_ok,
        "converged": bool(sentinel_ips) and complete and quorum_ok and not stale and master_pod is not None,
        "sentinels": sentinels,
    }


def sentinel_report(
    env: SandboxEnv,
    namespace: str,
    group: str,
    writer_report: WriterReport,
    switchovers: Sequence[Obj] | None = None,
) -> dict[str, Any]:
    """`acked_writes_lost`, `write_errors` (failed past the client's retry window), `write_retries`
    (by type), `max_write_gap_ms`, `switchover_gaps_ms` (longest writer gap per master
    switchover), `stale_replicas` (entries in a sentinel's view that are no live pod),
    `master_pod`, `quorum_ok`, and the detail behind them."""
    state = sentinel_state(env, namespace, group)
    records = list(switchovers) if switchovers is not None else recorded_switchovers(env, namespace, group)
    gaps = switchover_gaps(writer_report, records)
    return {
        "acked_writes": writer_report.acked,
        "acked_writes_lost": writer_report.lost,
        "write_errors": writer_report.errors,
        "write_error_types": writer_report.error_types,
        "write_retries": writer_report.retries,
        "write_retry_types": writer_report.retry_types,
        "max_write_gap_ms": writer_report.max_gap_ms,
        "max_write_latency_ms": writer_report.max_latency_ms,
        "switchover_gaps_ms": gaps,
        "switchovers": [
            {"from": s["from"], "to": s["to"], "writes_held_ms": s.get("paused_ms"), "write_gap_ms": g}
            for s, g in zip(records, gaps, strict=True)
        ],
        "stale_replicas": state["stale_replicas"],
        "master_pod": state["master_pod"],
        "quorum_ok": state["quorum_ok"],
        "sentinels": state["sentinels"],
    }
