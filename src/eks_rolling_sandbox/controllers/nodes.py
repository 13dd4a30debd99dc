"""Node lifecycle (condition taints, pods marked not ready on a lost node) and PodGC.

Upstream: pkg/controller/nodelifecycle (taints from conditions, pods marked not ready) and
pkg/controller/podgc (pods of deleted nodes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from eks_rolling.labels import TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE, TAINT_NODE_UNSCHEDULABLE

from ..api.errors import ApiError
from ..api.objects import condition, node_condition, set_condition
from ..api.store import Obj, WatchEvent, timestamp
from .base import Controller, NamespacedKey

MANAGED_TAINTS = {TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE, TAINT_NODE_UNSCHEDULABLE}


class NodeLifecycleController(Controller[str]):
    name = "node-lifecycle"

    def keys_for(self, ev: WatchEvent) -> Iterable[str]:
        if ev.resource.plural == "nodes" and ev.type != "DELETED":
            return (ev.obj["metadata"]["name"],)
        return ()

    def initial_keys(self) -> Iterable[str]:
        return [n["metadata"]["name"] for n in self.store.all("nodes")]

    def reconcile(self, key: str) -> float | None:
        node = self.store.get("nodes", None, key)
        if node is None:
            return None
        ready = node_condition(node, "Ready")
        status = ready["status"] if ready else "Unknown"
        want: list[Obj] = []
        if status == "False":
            want.append({"key": TAINT_NODE_NOT_READY, "effect": "NoSchedule"})
        elif status == "Unknown":
            want.append({"key": TAINT_NODE_UNREACHABLE, "effect": "NoSchedule"})
        if node["spec"].get("unschedulable"):
            want.append({"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"})
        current = node["spec"].get("taints") or []
        have = [(t["key"], t["effect"]) for t in current if t["key"] in MANAGED_TAINTS]
        if sorted(have) != sorted((t["key"], t["effect"]) for t in want):
            rv = node["metadata"]["resourceVersion"]

            def retaint(cur: Obj) -> Obj:
                keep = [t for t in cur["spec"].get("taints") or [] if t["key"] not in MANAGED_TAINTS]
                old = {(t["key"], t["effect"]): t for t in cur["spec"].get("taints") or []}
                new = [old.get((t["key"], t["effect"]), {**t, "timeAdded": timestamp()}) for t in want]
                cur["spec"]["taints"] = keep + new
                if not cur["spec"]["taints"]:
                    del cur["spec"]["taints"]
                return cur

            # RV-guarded, like the real controller: never clobber a taint someone just added.
            self.store.mutate("nodes", None, node["metadata"]["name"], retaint, expect_rv=rv)
        if status != "True":
            self._mark_pods_not_ready(node["metadata"]["name"])
        return None

    def _mark_pods_not_ready(self, node_name: str) -> None:
        for p in self.store.by_index("pods", "node", node_name):
            rc = next((c for c in p.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)
            if rc is None or rc["status"] != "True":
                continue

            def mark(cur: Obj) -> Obj:
                st = cur["status"]
                st["conditions"] = set_condition(
                    st.get("conditions", []), condition("Ready", False, "NodeNotReady", "Node is not ready")
                )
                for cs in st.get("containerStatuses", []):
                    cs["ready"] = False
                return cur

            with contextlib.suppress(ApiError):
                self.store.mutate("pods", p["metadata"]["namespace"], p["metadata"]["name"], mark)


class PodGC(Controller[NamespacedKey]):
    """Force-deletes pods bound to nodes that no longer exist (pkg/controller/podgc, orphaned pods)."""

    name = "podgc"

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "nodes" and ev.type == "DELETED":
            return [
                (p["metadata"]["namespace"], p["metadata"]["name"])
                for p in self.store.by_index("pods", "node", ev.obj["metadata"]["name"])
            ]
        if ev.resource.plural == "pods" and ev.type != "DELETED":
            node = ev.obj["spec"].get("nodeName")
            if node and self.store.get("nodes", None, node) is None:
                return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        return ()

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        pod = self.store.get("pods", ns, name)
        if pod is None:
            return None
        node = pod["spec"].get("nodeName")
        if node and self.store.get("nodes", None, node) is None:
            try:
                self.store.delete("pods", ns, name, expect_uid=pod["metadata"]["uid"])
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        return None
