"""A tiny controller runtime: store events are mapped to keys, keys are reconciled by one worker
thread, and a reconcile may ask to be run again after a delay (timers such as "Ready after 0.5 s").

Upstream: the shape of client-go's informer plus workqueue (tools/cache, util/workqueue)
and controller-runtime's RequeueAfter.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..api.errors import ApiError
from ..api.store import Store, WatchEvent

if TYPE_CHECKING:
    from ..api.registry import Registry

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
C = TypeVar("C", bound="Controller[Any]")

# Most controllers reconcile one namespaced object: (namespace, name).
NamespacedKey = tuple[str, str]


@dataclass
class Timings:
    """Every delay in the sandbox, in seconds. Small by default so tests run in seconds."""

    pod_start_s: float = 0.2  # bound -> Running (image pull, container start)
    pod_ready_s: float = 0.3  # Running -> Ready, for pods without a real process
    pod_exit_s: float = 0.2  # graceful termination takes min(grace, this) without a real process
    node_boot_s: float = 1.0  # instance running -> Node registered (NotReady)
    node_ready_s: float = 1.0  # registered -> Ready
    node_delete_s: float = 1.0  # instance terminated -> Node deleted by the cloud controller
    pdb_sync_s: float = 0.0  # disruption controller lag
    cloud_poll_s: float = 0.2  # how often the cloud bridge looks at moto
    process_probe_s: float = 0.1  # readiness probe period for real processes
    process_liveness_s: float = 1.0  # liveness check period once Ready
    # Set by the realistic profile (eks_rolling_sandbox.timing); these defaults are the fast profile.
    spec_scale: float | None = None  # pod-spec seconds (grace, preStop, probes) x this; None: fast caps
    jitter: float = 0.0  # boot, ready and pod start vary by +- this fraction per instance / pod
    seed: int = 0  # the jitter is a pure function of (seed, object): runs are reproducible
    endpoint_lag_s: float = 0.0  # pod change -> Endpoints/EndpointSlice update

    def jittered(self, seconds: float, key: str) -> float:
        """`seconds` varied by +- `jitter`, the same for the same (seed, key) in every run."""
        if not self.jitter or seconds <= 0:
            return seconds
        return seconds * random.Random(f"{self.seed}:{key}").uniform(1 - self.jitter, 1 + self.jitter)

    def spec_seconds(self, seconds: float) -> float:
        """A duration a pod spec states, on this sandbox's clock."""
        return seconds * self.spec_scale if self.spec_scale is not None else seconds


class Controller(Generic[K]):
    """Reconciles keys of type `K` (hashable: they key the work queue)."""

    name = "controller"
    _index: int  # position in Manager.controllers, set by Manager.add

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.store: Store = manager.store
        self.registry: Registry = manager.registry
        self.timings: Timings = manager.timings

    def keys_for(self, ev: WatchEvent) -> Iterable[K]:
        """Map a store event to keys to reconcile. Runs under the store lock: be quick, no writes."""
        return ()

    def initial_keys(self) -> Iterable[K]:
        return ()

    def reconcile(self, key: K) -> float | None:
        """Converge `key`; return seconds until it must run again, or None."""
        raise NotImplementedError

    def enqueue(self, key: K, delay: float = 0.0) -> None:
        self.manager.enqueue(self, key, delay)

    def event_delay(self) -> float:
        """How long after a store event this controller reacts (a pending earlier run wins, so
        changes within the delay are batched, like the EndpointSlice controller's batch period)."""
        return 0.0


class Manager:
    def __init__(self, store: Store, registry: Registry, timings: Timings) -> None:
        self.store, self.registry, self.timings = store, registry, timings
        self.controllers: list[Controller[Any]] = []
        self._heap: list[tuple[float, int, int, Hashable]] = []
        self._due: dict[tuple[int, Hashable], float] = {}
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.errors = 0

    def add(self, controller: C) -> C:
        controller._index = len(self.controllers)
        self.controllers.append(controller)
        return controller

    def enqueue(self, controller: Controller[K], key: K, delay: float = 0.0) -> None:
        idx = controller._index
        due = time.monotonic() + max(delay, 0.0)
        with self._cv:
            cur = self._due.get((idx, key))
            if cur is not None and cur <= due:
                return
            self._due[(idx, key)] = due
            heapq.heappush(self._heap, (due, next(self._seq), idx, key))
            self._cv.notify()

    def _on_event(self, ev: WatchEvent) -> None:
        for c in self.controllers:
            for key in c.keys_for(ev):
                self.enqueue(c, key, c.event_delay())

    def start(self) -> None:
        self._unsubscribe.append(self.store.subscribe(self._on_event))
        for c in self.controllers:
            for key in c.initial_keys():
                self.enqueue(c, key)
        self._thread = threading.Thread(target=self._run, name="sandbox-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for unsub in self._unsubscribe:
            unsub()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def idle(self, horizon_s: float = 0.0) -> bool:
        """True when nothing is running and nothing is due within `horizon_s`."""
        with self._cv:
            if self._busy:
                return False
            now = time.monotonic()
            return all(due > now + horizon_s for due in self._due.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                while not self._stop.is_set():
                    if self._heap:
                        due, _, idx, key = self._heap[0]
                        if self._due.get((idx, key)) != due:
                            heapq.heappop(self._heap)  # superseded by an earlier enqueue
                            continue
                        wait = due - time.monotonic()
                        if wait <= 0:
                            heapq.heappop(self._heap)
                            del self._due[(idx, key)]
                            self._busy = True
                            break
                        self._cv.wait(timeout=min(wait, 0.5))
                    else:
                        self._cv.wait(timeout=0.5)
                else:
                    return
            controller = self.controllers[idx]
            try:
                again = controller.reconcile(key)
            except ApiError as exc:
                again = 0.02 if exc.code == 409 else 0.5
                if exc.code not in (404, 409):
                    self.errors += 1
                    log.warning("%s reconcile %s: %s", controller.name, key, exc.message)
            except Exception:
                self.errors += 1
                log.exception("%s reconcile %s failed", controller.name, key)
                again = 1.0
            finally:
                with self._cv:
                    self._busy = False
            if again is not None:
                self.enqueue(controller, key, again)
