"""Endpoints and EndpointSlices for Services with a selector (ready and not-ready addresses).

Upstream: pkg/controller/endpoint and pkg/controller/endpointslice.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..api.objects import pod_is_ready, pod_is_terminal
from ..api.selection import pods_selected, selecting
from ..api.selectors import label_selector_matches
from ..api.store import Obj, WatchEvent
from .base import Controller, NamespacedKey


class EndpointsController(Controller[NamespacedKey]):
    name = "endpoints"

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "services":
            return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        if ev.resource.plural == "pods":
            ns = ev.obj["metadata"]["namespace"]
            labels = [(o["metadata"].get("labels") or {}) for o in (ev.obj, ev.old) if o is not None]
            return [
                (ns, s["metadata"]["name"])
                for s in selecting(self.store, "services", ns, labels)
                if s["spec"].get("selector")
                and any(label_selector_matches({"matchLabels": s["spec"]["selector"]}, lb) for lb in labels)
            ]
        return ()

    def event_delay(self) -> float:
        return self.timings.endpoint_lag_s

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.store.all("services")]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        svc = self.store.get("services", ns, name)
        if svc is None:
            for plural, oname in (("endpoints", name), ("endpointslices", f"{name}-sandbox")):
                if self.store.get(plural, ns, oname) is not None:
                    self.store.delete(plural, ns, oname)
            return None
        sel = svc["spec"].get("selector")
        if not sel:
            return None
        publish_unready = svc["spec"].get("publishNotReadyAddresses", False)
        pods = [p for p in pods_selected(self.store, ns, {"matchLabels": sel}) if p["status"].get("podIP")]
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        slice_eps: list[Obj] = []
        for p in pods:
            # endpointsliceutil.ShouldPodBeInEndpoints: finished pods are never endpoints.
            if pod_is_terminal(p):
                continue
            terminating = "deletionTimestamp" in p["metadata"]
            pod_ready = pod_is_ready(p)
            addr = {
                "ip": p["status"]["podIP"],
                "nodeName": p["spec"].get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }
            if p["spec"].get("hostname") and svc["spec"].get("clusterIP") == "None":
                addr["hostname"] = p["spec"]["hostname"]
            # Endpoints (pkg/controller/endpoint): terminating pods are left out unless
            # publishNotReadyAddresses; ready means IsPodReady (or publishNotReadyAddresses).
            if publish_unready or not terminating:
                (ready if publish_unready or pod_ready else not_ready).append(addr)
            # EndpointSlices (pkg/controller/endpointslice utils podToEndpoint) keep terminating
            # pods, never "ready" unless publishNotReadyAddresses.
            slice_eps.append(
                {
                    "addresses": [p["status"]["podIP"]],
                    "conditions": {
                        "ready": publish_unready or (pod_ready and not terminating),
                        "serving": publish_unready or pod_ready,
                        "terminating": terminating,
                    },
                    "nodeName": p["spec"].get("nodeName"),
                    "targetRef": addr["targetRef"],
                }
            )
        ports = [
            {
                "name": pt.get("name", ""),
                "port": pt.get("targetPort", pt.get("port")),
                "protocol": pt.get("protocol", "TCP"),
            }
            for pt in svc["spec"].get("ports", [])
        ]
        subset: Obj = {"ports": ports}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        ep = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": dict(svc["metadata"].get("labels") or {})},
            "subsets": [subset] if (ready or not_ready) else [],
        }
        sl = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-sandbox",
                "namespace": ns,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
            },
            "addressType": "IPv4",
            "endpoints": sorted(slice_eps, key=lambda e: e["addresses"][0]),
            "ports": ports,
        }
        self._put("endpoints", ns, ep)
        self._put("endpointslices", ns, sl)
        return None

    def _put(self, plural: str, ns: str, obj: Obj) -> None:
        cur = self.store.get(plural, ns, obj["metadata"]["name"])
        if cur is None:
            self.store.create(plural, obj)
            return
        body = {k: v for k, v in obj.items() if k != "metadata"}
        if all(cur.get(k) == v for k, v in body.items()):
            return

        def put(c: Obj) -> Obj:
            c.update(body)
            return c

        self.store.mutate(plural, ns, obj["metadata"]["name"], put)
