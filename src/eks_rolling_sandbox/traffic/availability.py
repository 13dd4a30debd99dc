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

from ..api.objects import controller_of, pod_is_ready
from ..api.selectors import label_selector_matches
from ..api.store import Obj, Store, WatchEvent


@dataclass
class Availability:
    namespace: str
    name: str
    replicas: int
    pdb: str | None
    pdb_min: int  # the minimum the PDB guarantees, as a ready-pod count
    min_ready: int
    ready: set[str] = field(default_factory=set)
    violations: list[dict[str, Any]] = field(default_factory=list)
    per_node_max_lost: int = 0  # most pods of this Deployment ever unready at once

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": f"{self.namespace}/{self.name}",
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
    """For every Deployment covered by a PDB: the fewest Ready (not terminating) pods ever seen,
    and each moment it was below what the PDB guarantees."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.tracked: dict[tuple[str, str], Availability] = {}
        self._unsubscribe: Any = None
        self.started_at = time.monotonic()

    def start(self) -> AvailabilityMonitor:
        with self.store.lock:
            for d in self.store.all("deployments"):
                ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
                replicas = d["spec"].get("replicas", 1)
                labels = d["spec"]["template"]["metadata"].get("labels") or {}
                pdb = next(
                    (
                        p
                        for p in self.store.list("poddisruptionbudgets", ns)[0]
                        if label_selector_matches(p["spec"].get("selector"), labels)
                    ),
                    None,
                )
                if pdb is None:
                    continue
                a = Availability(
                    ns, name, replicas, pdb["metadata"]["name"], pdb_min_available(pdb, replicas), replicas
                )
                for p in self.store.list("pods", ns)[0]:
                    if self._deployment_of(p) == (ns, name) and self._counts(p):
                        a.ready.add(p["metadata"]["name"])
                a.min_ready = len(a.ready)
                self.tracked[(ns, name)] = a
            self._unsubscribe = self.store.subscribe(self._on_event)
        return self

    def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None

    def _deployment_of(self, pod: Obj) -> tuple[str, str] | None:
        ref = controller_of(pod)
        if not ref or ref["kind"] != "ReplicaSet":
            return None
        rs = self.store.get("replicasets", pod["metadata"]["namespace"], ref["name"])
        dref = controller_of(rs) if rs else None
        return (pod["metadata"]["namespace"], dref["name"]) if dref and dref["kind"] == "Deployment" else None

    @staticmethod
    def _counts(pod: Obj | None) -> bool:
        if not pod:
            return False
        return pod_is_ready(pod) and "deletionTimestamp" not in pod["metadata"]

    def _on_event(self, ev: WatchEvent) -> None:
        if ev.resource.plural != "pods":
            return
        key = self._deployment_of(ev.obj if ev.type != "DELETED" else (ev.old or ev.obj))
        a = self.tracked.get(key) if key else None
        if a is None:
            return
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
        return [a.to_dict() for a in sorted(self.tracked.values(), key=lambda a: (a.namespace, a.name))]
