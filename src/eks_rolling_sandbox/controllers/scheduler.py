"""kube-scheduler, reduced to the plugins eks-rolling depends on: NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit (requests against allocatable, and the pod count), VolumeBinding
(zone pinning, WaitForFirstConsumer provisioning), required pod anti-affinity, and a spreading
score. Not-ready nodes are excluded by their not-ready taint. Filters run in the upstream
order and stop at a node's first failing plugin (framework.RunFilterPlugins). Per-node usage and
static filter results come from the scheduler's cache (scheduler_cache.py), and a pass stops
once numFeasibleNodesToFind nodes fit, starting where the last pass stopped (upstream's
percentageOfNodesToScore), so scheduling P pods on N nodes stays close to linear."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable

from eks_rolling.labels import LABEL_HOSTNAME, LABEL_TOPOLOGY_ZONE, TAINT_NODE_UNSCHEDULABLE
from eks_rolling.planning.resources import Resources

from ..api.errors import ApiError
from ..api.events import record_event
from ..api.objects import condition, controller_of, set_condition
from ..api.selectors import label_selector_matches
from ..api.store import Obj, WatchEvent
from .base import Controller, Manager, NamespacedKey
from .scheduler_cache import (
    TERMINAL_PHASES,
    NodeInfo,
    SchedulerCache,
    num_feasible_nodes_to_find,
    pod_requests,
    schedulable_view,
    scheduling_signature,
)
from .scheduling import node_affinity_matches, node_zone, pv_zones, untolerated_taint


def _is_pending(pod: Obj | None) -> bool:
    if not pod:
        return False
    return not pod["spec"].get("nodeName") and "deletionTimestamp" not in pod["metadata"]


class Scheduler(Controller[NamespacedKey]):
    name = "scheduler"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.pending: set[NamespacedKey] = set()
        self.cache = SchedulerCache()
        self._next_start = 0  # schedule_one.go nextStartNodeIndex: the round-robin over nodes

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        plural = ev.resource.plural
        self.cache.on_event(ev)  # under the store lock, like every keys_for
        if plural == "pods":
            key = (ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"])
            if ev.type != "DELETED" and _is_pending(ev.obj):
                self.pending.add(key)
                return (key,)
            self.pending.discard(key)
            # A pod leaving a node, or finishing on it, frees room (requests, max pods,
            # anti-affinity): retry the pending ones.
            if ev.type == "DELETED" and ev.old and ev.old["spec"].get("nodeName"):
                return tuple(self.pending)
            if (
                ev.old is not None
                and ev.obj["spec"].get("nodeName")
                and ev.obj.get("status", {}).get("phase") in TERMINAL_PHASES
                and ev.old.get("status", {}).get("phase") not in TERMINAL_PHASES
            ):
                return tuple(self.pending)
            return ()
        if (
            plural == "nodes"
            and ev.type != "DELETED"
            and (ev.old is None or schedulable_view(ev.old) != schedulable_view(ev.obj))
        ):
            return tuple(self.pending)
        if plural in ("persistentvolumeclaims", "persistentvolumes"):
            return tuple(self.pending)
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        with self.store.lock:
            pods = self.store.all("pods")
            self.cache.rebuild(self.store.all("nodes"), pods)
        keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods if _is_pending(p)]
        self.pending.update(keys)
        return keys

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        pod = self.store.get("pods", ns, name)
        if not _is_pending(pod):
            return None
        assert pod is not None
        spec = pod["spec"]
        want = pod_requests(pod)
        dynamic = self._has_dynamic_filters(pod)
        wc, wm = want.cpu_m, want.memory
        per_node, per_zone = self._siblings(pod)
        reasons: Counter[str] = Counter()
        best: Obj | None = None
        best_score: tuple[int, int, int, int, str] | None = None
        # The cache is kept by store events under the store lock: hold it for one consistent pass.
        with self.store.lock:
            infos = self.cache.ordered()
            total = len(infos)
            static = self.cache.static_reasons(
                scheduling_signature(pod), lambda node: _static_filter(spec, node)
            )
            # findNodesThatPassFilters: from a moving start, stop once enough nodes fit. The fit
            # and the score are inlined: this loop runs nodes x pods times.
            to_find = num_feasible_nodes_to_find(total)
            start = self._next_start % total if total else 0
            processed = found = 0
            for info in itertools.chain(infos[start:], infos[:start]):
                processed += 1
                name = info.name
                why = static.get(name)
                if why is None:
                    alloc = info.allocatable
                    if (
                        info.pods >= info.max_pods
                        or (wc and info.cpu_m + wc > alloc.cpu_m)
                        or (wm and info.memory + wm > alloc.memory)
                    ):
                        why = _resources_fit(want, info)
                    elif dynamic:
                        why = self._dynamic_filter(pod, info.node)
                if why:
                    reasons.update(why)
                    continue
                # Spread score: PreferNoSchedule taints, siblings on the node, in the zone, load.
                score = (
                    info.prefer_no_schedule,
                    per_node.get(name, 0),
                    per_zone.get(info.zone, 0),
                    info.load,
                    name,
                )
                if best_score is None or score < best_score:
                    best_score, best = score, info.node
                found += 1
                if found >= to_find:
                    break
            self._next_start = (start + processed) % total if total else 0
        if best is None:
            self._unschedulable(pod, total, reasons)
            return None
        self._bind(pod, best)
        return None

    # --- filters -------------------------------------------------------------------------------
    @staticmethod
    def _has_dynamic_filters(pod: Obj) -> bool:
        """Filters that read other objects (claims, volumes, other pods) and are not cached."""
        spec = pod["spec"]
        return any(
            (v.get("persistentVolumeClaim") or {}).get("claimName") for v in spec.get("volumes") or []
        ) or bool(
            ((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution"
            )
        )

    def _dynamic_filter(self, pod: Obj, node: Obj) -> list[str] | None:
        why = self._volume_filter(pod, node)
        if why:
            return [why]
        if self._anti_affinity_violated(pod, node):
            return ["node(s) didn't match pod anti-affinity rules"]
        return None

    def _volume_filter(self, pod: Obj, node: Obj) -> str | None:
        ns = pod["metadata"]["namespace"]
        for vol in pod["spec"].get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.store.get("persistentvolumeclaims", ns, claim)
            if pvc is None:
                return f'persistentvolumeclaim "{claim}" not found'
            pv_name = pvc["spec"].get("volumeName")
            if not pv_name:
                continue  # WaitForFirstConsumer: provisioned in the chosen node's zone
            pv = self.store.get("persistentvolumes", None, pv_name)
            zones = pv_zones(pv) if pv else None
            if zones and node_zone(node) not in zones:
                return "node(s) had volume node affinity conflict"
        return None

    def _anti_affinity_violated(self, pod: Obj, node: Obj) -> bool:
        terms = ((pod["spec"].get("affinity") or {}).get("podAntiAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        ) or []
        if not terms:
            return False
        ns = pod["metadata"]["namespace"]
        for term in terms:
            topo = term.get("topologyKey", LABEL_HOSTNAME)
            domain = (node["metadata"].get("labels") or {}).get(topo)
            if domain is None:
                continue
            for other_node in self.store.all("nodes"):
                if (other_node["metadata"].get("labels") or {}).get(topo) != domain:
                    continue
                for other in self.store.by_index("pods", "node", other_node["metadata"]["name"]):
                    if other["metadata"]["namespace"] != ns or "deletionTimestamp" in other["metadata"]:
                        continue
                    if other["metadata"]["name"] == pod["metadata"]["name"]:
                        continue
                    if label_selector_matches(
                        term.get("labelSelector"), other["metadata"].get("labels") or {}
                    ):
                        return True
        return False

    # --- score ---------------------------------------------------------------------------------
    def _siblings(self, pod: Obj) -> tuple[dict[str, int], dict[str | None, int]]:
        """This pod's siblings (same controller) per node and per zone, for the spread score.
        Counted once per pod (one pass over the owner's pods), not once per candidate node."""
        owner = controller_of(pod)
        per_node: dict[str, int] = {}
        per_zone: dict[str | None, int] = {}
        if owner:
            for p in self.store.by_index("pods", "owner", owner["uid"]):
                node_name = p["spec"].get("nodeName")
                if node_name and "deletionTimestamp" not in p["metadata"]:
                    per_node[node_name] = per_node.get(node_name, 0) + 1
                    info = self.cache.nodes.get(node_name)
                    zone = info.zone if info else None
                    per_zone[zone] = per_zone.get(zone, 0) + 1
        return per_node, per_zone

    # --- bind ----------------------------------------------------------------------------------
    def _bind(self, pod: Obj, node: Obj) -> None:
        ns = pod["metadata"]["namespace"]
        for vol in pod["spec"].get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                self._provision(ns, claim, node)
        node_name = node["metadata"]["name"]

        def bind(cur: Obj) -> Obj:
            if cur["spec"].get("nodeName") or "deletionTimestamp" in cur["metadata"]:
                raise ApiError(409, "Conflict", "pod already bound or terminating")
            cur["spec"]["nodeName"] = node_name
            st = cur.setdefault("status", {})
            st["conditions"] = set_condition(st.get("conditions", []), condition("PodScheduled", True))
            return cur

        try:
            self.store.mutate("pods", ns, pod["metadata"]["name"], bind, expect_uid=pod["metadata"]["uid"])
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
            return
        record_event(
            self.store,
            pod,
            "Scheduled",
            f"Successfully assigned {ns}/{pod['metadata']['name']} to {node_name}",
            component="default-scheduler",
        )

    def _provision(self, ns: str, claim: str, node: Obj) -> None:
        """The EBS CSI provisioner under WaitForFirstConsumer: a PV in the chosen node's zone."""
        pvc = self.store.get("persistentvolumeclaims", ns, claim)
        if pvc is None or pvc["spec"].get("volumeName"):
            return
        zone = node_zone(node) or "unknown"
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        size = (pvc["spec"].get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        if self.store.get("persistentvolumes", None, pv_name) is None:
            self.store.create(
                "persistentvolumes",
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": pv_name, "labels": {LABEL_TOPOLOGY_ZONE: zone}},
                    "spec": {
                        "capacity": {"storage": size},
                        "accessModes": pvc["spec"].get("accessModes", ["ReadWriteOnce"]),
                        "claimRef": {
                            "kind": "PersistentVolumeClaim",
                            "namespace": ns,
                            "name": claim,
                            "uid": pvc["metadata"]["uid"],
                        },
                        "persistentVolumeReclaimPolicy": "Delete",
                        "storageClassName": pvc["spec"].get("storageClassName", "gp3"),
                        "volumeMode": "Filesystem",
                        "csi": {
                            "driver": "ebs.csi.aws.com",
                            "volumeHandle": f"vol-{pvc['metadata']['uid'].replace('-', '')[:17]}",
                            "fsType": "ext4",
                        },
                        "nodeAffinity": {
                            "required": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": LABEL_TOPOLOGY_ZONE, "operator": "In", "values": [zone]}
                                        ]
                                    }
                                ]
                            }
                        },
                    },
                    "status": {"phase": "Bound"},
                },
            )

        def bind_claim(cur: Obj) -> Obj:
            cur["spec"]["volumeName"] = pv_name
            cur["status"] = {
                "phase": "Bound",
                "accessModes": cur["spec"].get("accessModes", ["ReadWriteOnce"]),
                "capacity": {"storage": size},
            }
            cur["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = node[
                "metadata"
            ]["name"]
            return cur

        self.store.mutate("persistentvolumeclaims", ns, claim, bind_claim)

    def _unschedulable(self, pod: Obj, total: int, reasons: Counter[str]) -> None:
        # FitError.Error (pkg/scheduler/framework/types.go): "<count> <reason>" strings, sorted.
        detail = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
        msg = f"0/{total} nodes are available: {detail}." if detail else f"0/{total} nodes are available."
        msg += (
            f" preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
        )
        cond = condition("PodScheduled", False, "Unschedulable", msg)
        current = next(
            (c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), None
        )
        if current and current.get("message") == msg:
            return

        def mark(cur: Obj) -> Obj:
            st = cur.setdefault("status", {})
            st["conditions"] = set_condition(st.get("conditions", []), cond)
            return cur

        try:
            self.store.mutate("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], mark)
        except ApiError:
            return
        record_event(self.store, pod, "FailedScheduling", msg, type_="Warning", component="default-scheduler")


def _static_filter(spec: Obj, node: Obj) -> list[str] | None:
    """TaintToleration then NodeAffinity: they read only the pod spec and the node."""
    taint = untolerated_taint(spec, node)
    if taint is not None:
        if taint["key"] == TAINT_NODE_UNSCHEDULABLE and node["spec"].get("unschedulable"):
            return ["node(s) were unschedulable"]
        return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
    if not node_affinity_matches(spec, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    return None


def _resources_fit(want: Resources, info: NodeInfo) -> list[str] | None:
    """NodeResourcesFit (pkg/scheduler/framework/plugins/noderesources/fit.go): the requests
    of the pods bound to the node that have not finished (terminating ones still hold their
    room until they are gone) plus this pod's must fit in allocatable; every resource
    short is a reason ("Insufficient cpu", "Insufficient memory", "Too many pods")."""
    out = []
    if info.pods + 1 > info.max_pods:
        out.append("Too many pods")
    if want.cpu_m and info.cpu_m + want.cpu_m > info.allocatable.cpu_m:
        out.append("Insufficient cpu")
    if want.memory and info.memory + want.memory > info.allocatable.memory:
        out.append("Insufficient memory")
    return out or None
