"""The garbage collector: dependents whose owners are all gone are deleted (background propagation).

Upstream: pkg/controller/garbagecollector (background propagation only).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..api.errors import ApiError
from ..api.resources import BY_KIND
from ..api.store import WatchEvent
from .base import Controller

DEPENDENT_KINDS = ("pods", "replicasets", "controllerrevisions", "endpointslices")


# Key: (plural, namespace or "", name) of a dependent whose owner was deleted.
DependentKey = tuple[str, str, str]


class GarbageCollector(Controller[DependentKey]):
    name = "garbage-collector"

    def keys_for(self, ev: WatchEvent) -> Iterable[DependentKey]:
        if ev.type == "DELETED":
            uid = ev.obj["metadata"].get("uid", "")
            out: list[DependentKey] = []
            for plural in DEPENDENT_KINDS:
                for d in self.store.by_index(plural, "owner", uid):
                    out.append((plural, d["metadata"].get("namespace", ""), d["metadata"]["name"]))
            return out
        return ()

    def reconcile(self, key: DependentKey) -> float | None:
        plural, ns, name = key
        obj = self.store.get(plural, ns, name)
        if obj is None or "deletionTimestamp" in obj["metadata"]:
            return None
        refs = obj["metadata"].get("ownerReferences") or []
        for ref in refs:
            res = BY_KIND.get(ref["kind"])
            if res is None:
                return None
            owner = self.store.get(res.plural, ns if res.namespaced else None, ref["name"])
            if owner is not None and owner["metadata"]["uid"] == ref["uid"]:
                return None
        if refs:
            try:
                self.registry.delete(plural, ns, name, {"preconditions": {"uid": obj["metadata"]["uid"]}})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        return None
