"""Bounded write-load generators that measure what "zero acknowledged writes lost" needs.

Each writer runs ``SET <prefix>:<i> <i>`` in a background thread, bounded by ``max_writes``
and ``max_seconds``, and records which ``i`` were acknowledged, the errors, per-write latency
and the gaps between consecutive acknowledgements (the write unavailability one client sees).
After :meth:`stop`, :meth:`verify` reads every acknowledged key back from the *current*
master and counts those whose value is not ``str(i)``: acknowledged writes that were lost.

Client policy (Sentinel and direct writers): what an application on this Redis is configured
with, so the numbers are the ones its users would see. Two events are normal for any master
move, by any tool: a planned switchover holds writes with CLIENT PAUSE WRITE (up to
``SWITCHOVER_WRITE_GAP_BOUND_MS``, the e2e bound on one switchover's write gap), and Redis drops
its clients when the master's role changes. So the socket timeout (``SOCKET_TIMEOUT_S``) is above
that bound, and the idempotent ``SET k i`` is retried after a ConnectionError/TimeoutError on a
fresh client (a new connection and, through Sentinel, a new master lookup), with a short
exponential backoff, for as long as the write has taken less than ``RETRY_WINDOW_S`` (the same
bound) and at most ``WRITE_RETRIES`` times: an application rides out one master move this way.
One retry was not enough on a loaded machine: a sentinel answering a lookup slower than its
timeout, or still naming the demoted master for a moment, failed the single retry as well.
redis-py's own retries stay off, so every retry is ours and counted: the report has ``retries``
by type apart from ``errors`` (writes that still failed past the window). The unavailability
stays measured by the per-write latency (all attempts) and the longest gap, which the e2e tests
bound per switchover: retrying cannot hide an outage longer than the bound.
Passwords are only handed to redis-py, never logged or reported.

No upstream counterpart: a client as an application would run it (redis-py, Sentinel- and
cluster-aware).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypedDict, TypeVar, Unpack

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from eks_rolling.labels import REDIS_PORT

log = logging.getLogger(__name__)

Address = tuple[str, int]
ClientT = TypeVar("ClientT", redis.Redis, RedisCluster)

_VERIFY_BATCH = 1000

# The longest write gap one planned switchover may cause (its CLIENT PAUSE WRITE plus catching up);
# the Sentinel e2e test asserts it per switchover.
SWITCHOVER_WRITE_GAP_BOUND_MS = 2500
# Above that bound: a write held by a switchover waits instead of timing out.
SOCKET_TIMEOUT_S = SWITCHOVER_WRITE_GAP_BOUND_MS / 1000 + 0.5
# Retries of the idempotent SET after the connection broke or timed out, each on a fresh client,
# backing off from RETRY_BACKOFF_S (doubling), while the write has taken less than RETRY_WINDOW_S.
WRITE_RETRIES = 8
RETRY_BACKOFF_S = 0.05
RETRY_WINDOW_S = SWITCHOVER_WRITE_GAP_BOUND_MS / 1000
RETRY_ON: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
# Sentinels never pause: a short timeout keeps a moved sentinel's old address cheap.
SENTINEL_TIMEOUT_S = 0.5


class Load(TypedDict, total=False):
    """A write load's bounds and client options, shared by every writer (defaults in `_Writer`)."""

    prefix: str
    interval_s: float
    max_writes: int
    max_seconds: float
    gap_threshold_ms: float
    password: str | None
    socket_timeout: float


class RetryingLoad(Load, total=False):
    retries: int  # our retries of the idempotent SET; ClusterWriter has none (redis-py follows MOVED)


@dataclass
class Gap:
    """An interval between two consecutive acknowledged writes longer than the threshold."""

    offset_s: float  # seconds after the writer started, at the last ack before the gap
    started_at: float  # time.monotonic() of that ack, to compare with the caller's own stamps
    length_ms: float
    open_ended: bool = False  # the run ended (or began) inside this gap, with failing writes


@dataclass
class WriterReport:
    attempted: int
    acked: int
    errors: int
    lost: int | None  # None until verify() ran
    max_gap_ms: float
    max_latency_ms: float
    p99_latency_ms: float
    gaps: list[Gap]
    duration_s: float
    error_types: dict[str, int] = field(default_factory=dict)
    retries: int = 0  # retries of writes, each on a fresh client (acked or not: see errors)
    retry_types: dict[str, int] = field(default_factory=dict)  # what the first attempt raised

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def p99(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class _Writer(ABC, Generic[ClientT]):
    """The write loop and its bookkeeping; subclasses say how to build and read clients."""

    def __init__(
        self,
        *,
        prefix: str = "w",
        interval_s: float = 0.005,
        max_writes: int = 20_000,
        max_seconds: float = 60.0,
        gap_threshold_ms: float = 250.0,
        password: str | None = None,
        socket_timeout: float = SOCKET_TIMEOUT_S,
        retries: int = WRITE_RETRIES,
    ) -> None:
        if max_writes < 1 or max_seconds <= 0:
            raise ValueError("a writer needs max_writes >= 1 and max_seconds > 0")
        if retries < 0:
            raise ValueError("a writer needs retries >= 0")
        self.retries = retries
        self.prefix = prefix
        self.interval_s = interval_s
        self.max_writes = max_writes
        self.max_seconds = max_seconds
        self.gap_threshold_ms = gap_threshold_ms
        self.socket_timeout = socket_timeout
        self._password = password
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._acked: list[int] = []
        self._latencies_ms: list[float] = []
        self._gaps: list[Gap] = []
        self._max_gap_ms = 0.0
        self._attempted = 0
        self._errors: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()
        self._writing_client: ClientT | None = None  # the write loop's own
        self._t0 = 0.0
        self._t_end: float | None = None
        self._lost: int | None = None

    # -- subclass hooks
    @abstractmethod
    def _make_client(self) -> ClientT: ...

    @abstractmethod
    def _default_reader(self) -> ClientT: ...

    @abstractmethod
    def _mget(self, client: ClientT, keys: list[str]) -> list[Any]: ...

    def _close(self, client: ClientT) -> None:
        client.close()

    # -- public API
    def key(self, i: int) -> str:
        return f"{self.prefix}:{i}"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a writer runs once")
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.prefix}", daemon=True)
        self._thread.start()

    @property
    def started_at(self) -> float:
        """time.monotonic() when the writer started."""
        return self._t0

    @property
    def acked_count(self) -> int:
        with self._lock:
            return len(self._acked)

    @property
    def acked_indices(self) -> list[int]:
        with self._lock:
            return list(self._acked)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float) -> bool:
        """Wait for the writer to hit its own bounds; True if it finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> WriterReport:
        """Stop writing and return the report (``lost`` stays None until :meth:`verify`)."""
        self._stop.set()
        if self._thread is not None and not self.join(timeout_s):
            log.warning(
                "writer %s still busy %.1fs after stop; reporting what it has", self.prefix, timeout_s
            )
        return self.report()

    def report(self) -> WriterReport:
        with self._lock:
            end = self._t_end if self._t_end is not None else time.monotonic()
            return WriterReport(
                attempted=self._attempted,
                acked=len(self._acked),
                errors=sum(self._errors.values()),
                lost=self._lost,
                max_gap_ms=round(self._max_gap_ms, 3),
                max_latency_ms=round(max(self._latencies_ms, default=0.0), 3),
                p99_latency_ms=round(p99(self._latencies_ms), 3),
                gaps=list(self._gaps),
                duration_s=round(end - self._t0, 3) if self._t0 else 0.0,
                error_types=dict(self._errors),
                retries=sum(self._retries.values()),
                retry_types=dict(self._retries),
            )

    def verify(self, read_client_factory: Callable[[], ClientT] | None = None) -> int:
        """Count acknowledged writes whose value is not ``str(i)`` on the current master.

        Call after :meth:`stop`, once replication has settled. ``read_client_factory`` returns
        a fresh client to read through (it is closed afterwards); by default the writer builds
        one the way it wrote (through Sentinel, the cluster, or the same node).
        """
        if self.running:
            raise RuntimeError("verify() needs a stopped writer")
        acked = self.acked_indices
        client = read_client_factory() if read_client_factory is not None else self._default_reader()
        lost = 0
        try:
            for start in range(0, len(acked), _VERIFY_BATCH):
                batch = acked[start : start + _VERIFY_BATCH]
                values = self._mget(client, [self.key(i) for i in batch])
                lost += sum(1 for i, v in zip(batch, values, strict=True) if v != str(i))
        finally:
            self._close(client)
        with self._lock:
            self._lost = lost
        log.info("writer %s: %d acked, %d lost", self.prefix, len(acked), lost)
        return lost

    # -- the loop
    def _run(self) -> None:
        last_ack: float | None = None
        failing = False  # a write failed since the last ack (or since the start)
        try:
            for i in range(self.max_writes):
                if self._stop.is_set() or time.monotonic() - self._t0 >= self.max_seconds:
                    break
                t_start = time.monotonic()
                try:
                    self._write(i)
                    ok = True
                except Exception as exc:  # every failure is data here; the loop must go on
                    ok = False
                    self._record_error(exc)
                t_done = time.monotonic()
                with self._lock:
                    self._attempted += 1
                    self._latencies_ms.append((t_done - t_start) * 1000)
                    if ok:
                        self._acked.append(i)
                        ref = last_ack if last_ack is not None else (self._t0 if failing else None)
                        if ref is not None:
                            self._note_gap(ref, t_done, open_ended=last_ack is None)
                        last_ack, failing = t_done, False
                    else:
                        failing = True
                self._stop.wait(self.interval_s)
        finally:
            end = time.monotonic()
            with self._lock:
                if failing:  # the run ended while writes were failing: that tail is a gap too
                    self._note_gap(last_ack if last_ack is not None else self._t0, end, open_ended=True)
                self._t_end = end
            self._drop_client()

    def _write(self, i: int) -> None:
        """``SET key(i) i``, retried up to ``self.retries`` times within ``RETRY_WINDOW_S`` on a
        fresh client after a connection-level failure (see the module doc); anything else, or the
        last failure, raises."""
        started, backoff = time.monotonic(), RETRY_BACKOFF_S
        for attempt in range(self.retries + 1):
            if self._writing_client is None:
                self._writing_client = self._make_client()
            try:
                self._writing_client.set(self.key(i), i)
                return
            except RETRY_ON as exc:
                if attempt == self.retries or time.monotonic() - started + backoff > RETRY_WINDOW_S:
                    raise
                self._record_retry(exc)
                self._drop_client()  # the next attempt connects (and looks the master up) anew
                if self._stop.wait(backoff):
                    raise
                backoff *= 2

    def _drop_client(self) -> None:
        client, self._writing_client = self._writing_client, None
        if client is not None:
            with contextlib.suppress(Exception):  # it is broken already; closing is tidying up
                self._close(client)

    def _record_retry(self, exc: Exception) -> None:
        name = type(exc).__name__
        with self._lock:
            first = name not in self._retries
            self._retries[name] += 1
        if first:
            log.info("writer %s: first retry after %s: %s", self.prefix, name, exc)

    def _note_gap(self, ref: float, now: float, *, open_ended: bool) -> None:
        length_ms = (now - ref) * 1000
        self._max_gap_ms = max(self._max_gap_ms, length_ms)
        if length_ms > self.gap_threshold_ms:
            self._gaps.append(
                Gap(
                    offset_s=round(ref - self._t0, 3),
                    started_at=ref,
                    length_ms=round(length_ms, 3),
                    open_ended=open_ended,
                )
            )

    def _record_error(self, exc: Exception) -> None:
        name = type(exc).__name__
        with self._lock:
            first = name not in self._errors
            self._errors[name] += 1
        if first:
            log.info("writer %s: first %s: %s", self.prefix, name, exc)


class SentinelWriter(_Writer[redis.Redis]):
    """Writes through ``Sentinel.master_for`` under the module's client policy."""

    def __init__(
        self,
        sentinels: Sequence[Address],
        service_name: str = "mymaster",
        *,
        sentinel_password: str | None = None,
        **load: Unpack[RetryingLoad],
    ) -> None:
        super().__init__(**load)
        self.sentinels = list(sentinels)
        self.service_name = service_name
        self._sentinel_password = sentinel_password

    def _sentinel(self) -> Sentinel:
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        }
        if self._sentinel_password is not None:
            sentinel_kwargs["password"] = self._sentinel_password
        return Sentinel(self.sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]

    def _make_client(self) -> redis.Redis:
        # redis-py ships Sentinel untyped.
        client: redis.Redis = self._sentinel().master_for(  # type: ignore[no-untyped-call]
            self.service_name,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            retry=Retry(NoBackoff(), 0),
            password=self._password,
            decode_responses=True,
        )
        return client

    def _default_reader(self) -> redis.Redis:
        client: redis.Redis = self._sentinel().master_for(  # type: ignore[no-untyped-call]
            self.service_name, socket_timeout=2.0, password=self._password, decode_responses=True
        )
        return client

    def _mget(self, client: redis.Redis, keys: list[str]) -> list[Any]:
        return list(client.mget(keys))

    def _close(self, client: redis.Redis) -> None:
        client.close()
        pool = client.connection_pool
        if isinstance(pool, SentinelConnectionPool):  # also close the Sentinel's own clients
            pool.sentinel_manager.close()


class DirectWriter(_Writer[redis.Redis]):
    """Writes to one fixed node (no Sentinel; the retry reconnects to the same node): the
    baseline and the loss demo."""

    def __init__(
        self,
        ip: str,
        port: int = REDIS_PORT,
        **load: Unpack[RetryingLoad],
    ) -> None:
        super().__init__(**load)
        self.address = (ip, port)

    def _client(self, timeout_s: float) -> redis.Redis:
        return redis.Redis(
            host=self.address[0],
            port=self.address[1],
            password=self._password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def _make_client(self) -> redis.Redis:
        return self._client(self.socket_timeout)

    def _default_reader(self) -> redis.Redis:
        return self._client(2.0)

    def _mget(self, client: redis.Redis, keys: list[str]) -> list[Any]:
        return list(client.mget(keys))


class ClusterWriter(_Writer[RedisCluster]):
    """Writes through ``RedisCluster`` with its default retries (it must follow MOVED), so none
    of ours on top (``retries=0``); the Cluster procedure pauses no writes (0.5 s timeout).

    Keys spread over all slots; a hash-tag prefix such as ``"{a}"`` pins them to one slot.
    """

    def __init__(
        self,
        startup_nodes: Sequence[Address],
        **load: Unpack[Load],
    ) -> None:
        load.setdefault("socket_timeout", 0.5)  # the Cluster procedure pauses no writes
        super().__init__(**load, retries=0)
        self.startup_nodes = list(startup_nodes)

    def _cluster(self, timeout_s: float) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode(ip, port) for ip, port in self.startup_nodes],  # type: ignore[no-untyped-call]
            password=self._password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=True,
        )

    def _make_client(self) -> RedisCluster:
        return self._cluster(self.socket_timeout)

    def _default_reader(self) -> RedisCluster:
        return self._cluster(2.0)

    def _mget(self, client: RedisCluster, keys: list[str]) -> list[Any]:
        return list(client.mget_nonatomic(keys))
