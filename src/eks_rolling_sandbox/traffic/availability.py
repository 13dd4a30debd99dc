"""Invariant checkers evaluated on every store change (synchronously, under the store lock), so a
violation that lasts a single write is still seen.

No upstream counterpart: what an SLO monitor would check, at every store write.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eks_rolling.labels import REDIS_GROUP

from ..api.objects import controller_of, pod_is_ready
from ..api.selectors import label_selector_matches
from ..api.store import Obj, Store, WatchEvent

Workload = tuple[str, str, str]  # (kind, namespace, name); kind Deployment, StatefulSet or RedisGroup


@dataclass
class Availability:
    kind: str
    namespace: str
    name: str
    replicas: int
    pdb: str | None
    pdb_min: int  # the minimum the PDB guarantees, as a ready-pod count
    min_ready: int
    ready: set[str] = field(default_factory=set)
    violations: list[dict[str, Any]] = field(default_factory=list)
    per_node_max_lost: int = 0  # most pods of this workload ever unready at once

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "workload": f"{self.namespace}/{self.name}",
            "replicas": self.replicas,
            "pdb": self.pdb,
            "pdb_min_available": self.pdb_min,
            "min_ready": self.min_ready,
            "violations": len(self.violations),
        }


def pdb_min_available(pdb: Obj, replicas: int) -> int:
    spec = pdb["spec"]
    if "minAvailable" in spec:
        v = spec["minAvailable"]
        return math.ceil(int(v[:-1]) * replicas / 100) if isinstance(v, str) and v.endswith("%") else int(v)
    v = spec.get("maxUnavailable", 0)
    unavailable = (
        math.ceil(int(v[:-1]) * replicas / 100) if isinstance(v, str) and v.endswith("%") else int(v)
    )
    return max(replicas - unavailable, 0)


class AvailabilityMonitor:
    """For every Deployment and StatefulSet covered by a PDB, and every Redis group (its
    StatefulSets' pods together, PDB or not): the fewest Ready (not terminating) pods ever seen,
    and each moment it was below what the PDB guarantees. A failure of the monitor itself is
    counted in `errors` (and fails the demo): a monitor that stops seeing cannot report zero."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.tracked: dict[Workload, Availability] = {}
        self.errors = 0
        self.error_samples: list[str] = []  # the first few, for the report
        self._unsubscribe: Any = None
        self.started_at = time.monotonic()

    def start(self) -> AvailabilityMonitor:
        with self.store.lock:
            for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
                for w in self.store.all(plural):
                    ns, name = w["metadata"]["namespace"], w["metadata"]["name"]
                    pdb = self._pdb_for(ns, w["spec"]["template"]["metadata"].get("labels") or {})
                    if pdb is not None:
                        self._track((kind, ns, name), w["spec"].get("replicas", 1), pdb)
            groups: dict[tuple[str, str], list[Obj]] = {}
            for sts in self.store.all("statefulsets"):
                group = (sts["metadata"].get("annotations") or {}).get(REDIS_GROUP)
                if group:
                    groups.setdefault((sts["metadata"]["namespace"], group), []).append(sts)
            for (ns, group), sets in groups.items():
                pdb = self._pdb_for(ns, sets[0]["spec"]["template"]["metadata"].get("labels") or {})
                self._track(("RedisGroup", ns, group), sum(s["spec"].get("replicas", 1) for s in sets), pdb)
            for p in self.store.all("pods"):
                for key in self._workloads_of(p):
                    a = self.tracked.get(key)
                    if a is not None and self._counts(p):
                        a.ready.add(p["metadata"]["name"])
            for a in self.tracked.values():
                a.min_ready = len(a.ready)
            self._unsubscribe = self.store.subscribe(self._on_event)
        return self

    def _pdb_for(self, ns: str, labels: dict[str, str]) -> Obj | None:
        return next(
            (
                p
                for p in self.store.list("poddisruptionbudgets", ns)[0]
                if label_selector_matches(p["spec"].get("selector"), labels)
            ),
            None,
        )

    def _track(self, key: Workload, replicas: int, pdb: Obj | None) -> None:
        kind, ns, name = key
        self.tracked[key] = Availability(
            kind,
            ns,
            name,
            replicas,
            pdb["metadata"]["name"] if pdb else None,
            pdb_min_available(pdb, replicas) if pdb else 0,
            replicas,
        )

    def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None

    def _workloads_of(self, pod: Obj) -> list[Workload]:
        ref = controller_of(pod)
        ns = pod["metadata"]["namespace"]
        if not ref:
            return []
        if ref["kind"] == "ReplicaSet":
            rs = self.store.get("replicasets", ns, ref["name"])
            dref = controller_of(rs) if rs else None
            return [("Deployment", ns, dref["name"])] if dref and dref["kind"] == "Deployment" else []
        if ref["kind"] == "StatefulSet":
            out: list[Workload] = [("StatefulSet", ns, ref["name"])]
            sts = self.store.get("statefulsets", ns, ref["name"])
            group = ((sts or {}).get("metadata", {}).get("annotations") or {}).get(REDIS_GROUP)
            return [*out, ("RedisGroup", ns, group)] if group else out
        return []

    @staticmethod
    def _counts(pod: Obj | None) -> bool:
        if not pod:
            return False
        return pod_is_ready(pod) and "deletionTimestamp" not in pod["metadata"]

    def _on_event(self, ev: WatchEvent) -> None:
        if ev.resource.plural != "pods":
            return
        try:
            for key in self._workloads_of(ev.obj if ev.type != "DELETED" else (ev.old or ev.obj)):
                a = self.tracked.get(key)
                if a is not None:
                    self._record(a, ev)
        except Exception as exc:  # counted and reported: the store would only log it
            with self._lock:
                self.errors += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(f"{type(exc).__name__}: {exc} (rv {ev.rv})")

    def _record(self, a: Availability, ev: WatchEvent) -> None:
        name = ev.obj["metadata"]["name"]
        if ev.type != "DELETED" and self._counts(ev.obj):
            a.ready.add(name)
        else:
            a.ready.discard(name)
        n = len(a.ready)
        with self._lock:
            a.min_ready = min(a.min_ready, n)
            a.per_node_max_lost = max(a.per_node_max_lost, a.replicas - n)
            if n < a.pdb_min:
                a.violations.append(
                    {
                        "at_s": round(time.monotonic() - self.started_at, 3),
                        "ready": n,
                        "pod": name,
                        "rv": ev.rv,
                    }
                )

    @property
    def violations(self) -> int:
        return sum(len(a.violations) for a in self.tracked.values())

    def report(self) -> list[dict[str, Any]]:
        return [
            a.to_dict() for a in sorted(self.tracked.values(), key=lambda a: (a.kind, a.namespace, a.name))
        ]
