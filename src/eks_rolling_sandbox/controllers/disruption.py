"""The disruption controller: PodDisruptionBudget status, as pkg/controller/disruption/disruption.go
computes it (getExpectedPodCount, countHealthyPods, buildDisruptedPodMap, updatePdbStatus, failSafe)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from ..api.events import record_event
from ..api.objects import controller_of, pod_is_ready
from ..api.selection import pods_selected, selecting
from ..api.selectors import label_selector_matches
from ..api.store import Obj, WatchEvent, timestamp, utcnow
from .base import Controller, Manager, NamespacedKey

DELETION_TIMEOUT = timedelta(minutes=2)
SCALE_KINDS = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "Deployment": "deployments"}


class _SyncError(Exception):
    pass


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=utcnow().tzinfo)


class DisruptionController(Controller[NamespacedKey]):
    name = "disruption"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self._first_seen: dict[NamespacedKey, datetime] = {}

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        plural = ev.resource.plural
        if plural == "poddisruptionbudgets":
            return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        if plural == "pods":
            ns = ev.obj["metadata"]["namespace"]
            labels = [(o["metadata"].get("labels") or {}) for o in (ev.obj, ev.old) if o is not None]
            return [
                (ns, p["metadata"]["name"])
                for p in selecting(self.store, "poddisruptionbudgets", ns, labels)
                if any(label_selector_matches(p["spec"].get("selector"), lb) for lb in labels)
            ]
        if plural in SCALE_KINDS.values() and ev.type != "ADDED":
            if ev.old is not None and ev.old["spec"].get("replicas") == ev.obj["spec"].get("replicas"):
                return ()
            ns = ev.obj["metadata"]["namespace"]
            return [(ns, p["metadata"]["name"]) for p in self.store.list("poddisruptionbudgets", ns)[0]]
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in self.store.all("poddisruptionbudgets")
        ]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        pdb = self.store.get("poddisruptionbudgets", ns, name)
        if pdb is None:
            return None
        lag = self.timings.pdb_sync_s
        if lag > 0 and pdb["status"].get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
            # A slow controller: evictions meanwhile get 429 + Retry-After 10 (generation ahead).
            seen = self._first_seen.setdefault(key, utcnow())
            remaining = lag - (utcnow() - seen).total_seconds()
            if remaining > 0:
                return remaining
            self._first_seen.pop(key, None)
        selector = pdb["spec"].get("selector")
        pods = pods_selected(self.store, ns, selector)
        now = utcnow()
        try:
            expected, desired = self._expected(pdb, pods)
        except _SyncError as exc:
            self._fail_safe(pdb, str(exc))
            return 1.0
        disrupted: dict[str, str] = {}
        recheck: float | None = None
        by_name = {p["metadata"]["name"]: p for p in pods}
        for pname, ts in (pdb["status"].get("disruptedPods") or {}).items():
            p = by_name.get(pname)
            if p is None or "deletionTimestamp" in p["metadata"]:
                continue
            expires = _parse(ts) + DELETION_TIMEOUT
            if expires < now:
                record_event(
                    self.store,
                    p,
                    "NotDeleted",
                    f"Pod was expected by PDB {ns}/{name} to be deleted but it wasn't",
                    type_="Warning",
                    component="controllermanager",
                )
                continue
            disrupted[pname] = ts
            left = (expires - now).total_seconds()
            recheck = left if recheck is None else min(recheck, left)
        healthy = sum(
            1
            for p in pods
            if "deletionTimestamp" not in p["metadata"]
            and p["metadata"]["name"] not in disrupted
            and pod_is_ready(p)
        )
        allowed = max(0, healthy - desired) if expected > 0 else 0
        status = {
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": allowed,
            "disruptedPods": disrupted,
        }
        ok = allowed > 0
        self._write(
            pdb, status, "True" if ok else "False", "SufficientPods" if ok else "InsufficientPods", ""
        )
        return recheck

    def _expected(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        """getExpectedPodCount."""
        spec = pdb["spec"]
        if spec.get("maxUnavailable") is not None:
            expected = self._controller_scale(pdb, pods)
            max_unavail = spec["maxUnavailable"]
            unavail = (
                math.ceil(int(str(max_unavail)[:-1]) * expected / 100)
                if isinstance(max_unavail, str) and max_unavail.endswith("%")
                else int(max_unavail)
            )
            return expected, max(0, expected - unavail)
        min_avail = spec.get("minAvailable")
        if min_avail is None:
            # Neither field set: expectedCount and desiredHealthy stay 0, so nothing may be disrupted.
            return 0, 0
        if isinstance(min_avail, str) and min_avail.endswith("%"):
            expected = self._controller_scale(pdb, pods)
            return expected, math.ceil(int(min_avail[:-1]) * expected / 100)
        return len(pods), int(min_avail)

    def _controller_scale(self, pdb: Obj, pods: list[Obj]) -> int:
        """getExpectedScale: the sum of the scale of every controller, each counted once, keyed by
        the UID of the controller the finders resolve (a Deployment, not its ReplicaSets)."""
        scale: dict[str, int] = {}
        unmanaged = []
        for p in pods:
            ref = controller_of(p)
            if ref is None:
                unmanaged.append(p["metadata"]["name"])
                continue
            if ref["uid"] in scale:
                continue
            uid, replicas = self._scale_of(p, ref)
            scale[uid] = replicas
        if unmanaged:
            record_event(
                self.store,
                pdb,
                "UnmanagedPods",
                f'Pods selected by this PodDisruptionBudget (selector: {pdb["spec"].get("selector")}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.',
                type_="Warning",
                component="controllermanager",
            )
        return sum(scale.values())

    def _scale_of(self, pod: Obj, ref: Obj) -> tuple[str, int]:
        """The finders: getPodReplicaSet / getPodDeployment (a ReplicaSet controlled by a Deployment
        resolves to the Deployment), getPodStatefulSet, getScaleController."""
        ns = pod["metadata"]["namespace"]

        def lookup(kind: str, name: str, uid: str) -> Obj | None:
            plural = SCALE_KINDS.get(kind)
            obj = self.store.get(plural, ns, name) if plural else None
            return obj if obj is not None and obj["metadata"]["uid"] == uid else None

        owner = lookup(ref["kind"], ref["name"], ref["uid"])
        if owner is not None and ref["kind"] == "ReplicaSet":
            dref = controller_of(owner)
            if dref is not None and dref["kind"] == "Deployment":
                owner = lookup("Deployment", dref["name"], dref["uid"])
        if owner is None:
            raise _SyncError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        return owner["metadata"]["uid"], int(owner["spec"].get("replicas", 1))

    def _fail_safe(self, pdb: Obj, message: str) -> None:
        """failSafe: on a sync error only disruptionsAllowed (to 0) and the condition change; the
        other counters and status.observedGeneration keep their old values."""
        st = pdb.get("status") or {}
        cond = {
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "SyncFailed",
            "message": message,
            "lastTransitionTime": timestamp(),
            "observedGeneration": st.get("observedGeneration", 0),
        }
        old = next((c for c in st.get("conditions", []) if c["type"] == "DisruptionAllowed"), None)
        if (
            st.get("disruptionsAllowed") == 0
            and old
            and all(old.get(k) == cond[k] for k in ("status", "reason", "message"))
        ):
            return
        if old and old["status"] == "False":
            cond["lastTransitionTime"] = old["lastTransitionTime"]

        def put(c: Obj) -> Obj:
            cs = c.setdefault("status", {})
            cs["disruptionsAllowed"] = 0
            cs["conditions"] = [x for x in cs.get("conditions", []) if x["type"] != "DisruptionAllowed"] + [
                cond
            ]
            return c

        self.store.mutate("poddisruptionbudgets", pdb["metadata"]["namespace"], pdb["metadata"]["name"], put)

    def _write(self, pdb: Obj, status: Obj, cond_status: str, reason: str, message: str) -> None:
        gen = pdb["metadata"].get("generation", 1)
        cur = pdb.get("status") or {}
        old_cond = next((c for c in cur.get("conditions", []) if c["type"] == "DisruptionAllowed"), None)
        if (
            all(cur.get(k) == v for k, v in status.items())
            and cur.get("observedGeneration") == gen
            and old_cond
            and old_cond["status"] == cond_status
            and old_cond.get("reason") == reason
        ):
            return
        transition = (
            old_cond["lastTransitionTime"] if old_cond and old_cond["status"] == cond_status else timestamp()
        )
        cond = {
            "type": "DisruptionAllowed",
            "status": cond_status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": transition,
            "observedGeneration": gen,
        }

        def put(c: Obj) -> Obj:
            st = c.setdefault("status", {})
            st.update(status)
            st["observedGeneration"] = gen
            st["conditions"] = [cond]
            return c

        self.store.mutate("poddisruptionbudgets", pdb["metadata"]["namespace"], pdb["metadata"]["name"], put)
