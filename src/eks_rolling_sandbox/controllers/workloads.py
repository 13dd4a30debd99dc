"""Deployment, ReplicaSet, StatefulSet and DaemonSet controllers.

Behaviours that matter to eks-rolling and are reproduced on purpose:
- ReplicaSet: a terminating pod is not counted as active, so an evicted pod's replacement is
  created at once, while the old one is still terminating; orphans matching the selector are
  adopted (a temp pod with the template's labels would be adopted and deleted).
- StatefulSet: a pod comes back with the same name (new UID, new IP, same PVC) only after the old
  object is gone; OrderedReady waits on lower ordinals; orphans named `<sts>-<n>` are adopted and
  condemned when n >= replicas, `<sts>-tmp-x` is not.
- DaemonSet: a missing pod is not recreated on a node with an untolerated NoSchedule taint, but a
  running one keeps running; only NoExecute removes it.

Upstream: pkg/controller/{deployment,replicaset,statefulset,daemon}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from eks_rolling.labels import (
    TAINT_NODE_DISK_PRESSURE,
    TAINT_NODE_MEMORY_PRESSURE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_PID_PRESSURE,
    TAINT_NODE_UNREACHABLE,
    TAINT_NODE_UNSCHEDULABLE,
)

from ..api.errors import ApiError
from ..api.events import record_event
from ..api.objects import (
    controller_of,
    node_is_ready,
    owner_ref,
    pod_is_ready,
    pod_is_terminal,
    quantity_percent,
    template_hash,
)
from ..api.selectors import label_selector_matches
from ..api.store import Obj, Store, WatchEvent, clone
from .base import Controller, NamespacedKey
from .scheduling import node_affinity_matches, tolerates

STS_POD_NAME = re.compile(r"^(.*)-([0-9]+)$")


def _active(pods: Iterable[Obj]) -> list[Obj]:
    return [p for p in pods if "deletionTimestamp" not in p["metadata"] and not pod_is_terminal(p)]


def _owner_keys(ev: WatchEvent, kind: str) -> list[NamespacedKey]:
    keys: list[NamespacedKey] = []
    for obj in (ev.obj, ev.old):
        if obj is None:
            continue
        ref = controller_of(obj)
        if ref and ref["kind"] == kind:
            keys.append((obj["metadata"]["namespace"], ref["name"]))
    return keys


def _pod_from_template(owner: Obj, template: Obj, name: str | None, generate: str | None) -> Obj:
    t = clone(template)
    md = t.get("metadata", {})
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": owner["metadata"]["namespace"],
            "labels": dict(md.get("labels") or {}),
            "annotations": dict(md.get("annotations") or {}),
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": t.get("spec", {}),
    }
    if name:
        pod["metadata"]["name"] = name
    else:
        pod["metadata"]["generateName"] = generate
    return pod


def sorted_by_name(objs: list[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: o["metadata"]["name"])


class ReplicaSetController(Controller[NamespacedKey]):
    name = "replicaset"

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "replicasets":
            return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        if ev.resource.plural == "pods":
            keys = _owner_keys(ev, "ReplicaSet")
            if not keys and ev.type != "DELETED" and controller_of(ev.obj) is None:
                ns = ev.obj["metadata"]["namespace"]
                labels = ev.obj["metadata"].get("labels") or {}
                keys = [
                    (ns, rs["metadata"]["name"])
                    for rs in self.store.list("replicasets", ns)[0]
                    if label_selector_matches(rs["spec"].get("selector"), labels)
                ]
            return keys
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in self.store.all("replicasets")]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        rs = self.store.get("replicasets", ns, name)
        if rs is None or "deletionTimestamp" in rs["metadata"]:
            return None
        uid = rs["metadata"]["uid"]
        self._adopt(rs)
        pods = self.store.by_index("pods", "owner", uid)
        active = _active(pods)
        want = rs["spec"].get("replicas", 1)
        if len(active) < want:
            for _ in range(want - len(active)):
                self.registry.create(
                    "pods", ns, _pod_from_template(rs, rs["spec"]["template"], None, f"{name}-")
                )
        elif len(active) > want:
            # Delete the least useful first: unscheduled, pending, not ready, then the newest.
            def rank(p: Obj) -> tuple[int, int, int, str]:
                return (
                    0 if not p["spec"].get("nodeName") else 1,
                    0 if p["status"].get("phase") == "Pending" else 1,
                    0 if not pod_is_ready(p) else 1,
                    "".join(chr(255 - ord(c)) for c in p["metadata"].get("creationTimestamp", "")),
                )

            for p in sorted(active, key=rank)[: len(active) - want]:
                try:
                    self.registry.delete(
                        "pods", ns, p["metadata"]["name"], {"preconditions": {"uid": p["metadata"]["uid"]}}
                    )
                except ApiError as exc:
                    if exc.code not in (404, 409):
                        raise
        active = _active(self.store.by_index("pods", "owner", uid))
        ready = sum(1 for p in active if pod_is_ready(p))
        labels_ok = sum(
            1
            for p in active
            if all(
                (p["metadata"].get("labels") or {}).get(k) == v
                for k, v in ((rs["spec"]["template"].get("metadata") or {}).get("labels") or {}).items()
            )
        )
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": labels_ok,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        _write_status(self.store, "replicasets", rs, status)
        return None

    def _adopt(self, rs: Obj) -> None:
        ns = rs["metadata"]["namespace"]
        sel = rs["spec"].get("selector")
        for p in sorted_by_name(self.store.by_index("pods", "orphan", ns)):
            if (
                controller_of(p) is None
                and "deletionTimestamp" not in p["metadata"]
                and label_selector_matches(sel, p["metadata"].get("labels") or {})
            ):

                def adopt(cur: Obj) -> Obj:
                    if controller_of(cur) is None:
                        cur["metadata"].setdefault("ownerReferences", []).append(owner_ref(rs))
                    return cur

                self.store.mutate("pods", ns, p["metadata"]["name"], adopt)


class DeploymentController(Controller[NamespacedKey]):
    name = "deployment"

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "deployments":
            return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        if ev.resource.plural == "replicasets":
            return _owner_keys(ev, "Deployment")
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.store.all("deployments")]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        d = self.store.get("deployments", ns, name)
        if d is None:
            return None
        want = d["spec"].get("replicas", 1)
        tmpl = d["spec"]["template"]
        h = template_hash(tmpl)
        owned = self.store.by_index("replicasets", "owner", d["metadata"]["uid"])
        new_rs = next(
            (r for r in owned if (r["metadata"].get("labels") or {}).get("pod-template-hash") == h), None
        )
        if new_rs is None:
            t = clone(tmpl)
            t.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = clone(d["spec"]["selector"])
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            new_rs = self.registry.create(
                "replicasets",
                ns,
                {
                    "metadata": {
                        "name": f"{name}-{h}",
                        "labels": t["metadata"]["labels"],
                        "ownerReferences": [owner_ref(d)],
                        "annotations": {"deployment.kubernetes.io/desired-replicas": str(want)},
                    },
                    "spec": {"replicas": want, "selector": sel, "template": t},
                },
            )
            owned = [*owned, new_rs]
        elif new_rs["spec"].get("replicas") != want:
            self.registry.patch(
                "replicasets",
                ns,
                new_rs["metadata"]["name"],
                "application/merge-patch+json",
                {"spec": {"replicas": want}},
            )
        old = [r for r in owned if r["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        new_ready = (new_rs.get("status") or {}).get("readyReplicas", 0)
        for r in old:
            # Simplified rollout: old ReplicaSets go to zero once the new one is fully ready.
            if new_ready >= want and r["spec"].get("replicas", 0) != 0:
                self.registry.patch(
                    "replicasets",
                    ns,
                    r["metadata"]["name"],
                    "application/merge-patch+json",
                    {"spec": {"replicas": 0}},
                )
        owned = self.store.by_index("replicasets", "owner", d["metadata"]["uid"])
        replicas = sum((r.get("status") or {}).get("replicas", 0) for r in owned)
        ready = sum((r.get("status") or {}).get("readyReplicas", 0) for r in owned)
        new_cur = next(
            (r for r in owned if (r["metadata"].get("labels") or {}).get("pod-template-hash") == h), new_rs
        )
        updated = (new_cur.get("status") or {}).get("replicas", 0)
        max_unavailable = quantity_percent(
            ((d["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%"),
            want,
            round_up=False,
        )
        available_ok = ready >= want - max_unavailable
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(want - ready, 0),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available_ok else "False",
                    "reason": "MinimumReplicasAvailable" if available_ok else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if available_ok
                    else "Deployment does not have minimum availability.",
                    "lastUpdateTime": d["metadata"]["creationTimestamp"],
                    "lastTransitionTime": d["metadata"]["creationTimestamp"],
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{new_cur["metadata"]["name"]}" has successfully progressed.',
                    "lastUpdateTime": d["metadata"]["creationTimestamp"],
                    "lastTransitionTime": d["metadata"]["creationTimestamp"],
                },
            ],
        }
        _write_status(self.store, "deployments", d, status)
        return None


class StatefulSetController(Controller[NamespacedKey]):
    name = "statefulset"

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "statefulsets":
            return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        if ev.resource.plural == "pods":
            keys = _owner_keys(ev, "StatefulSet")
            m = STS_POD_NAME.match(ev.obj["metadata"]["name"])
            if m and controller_of(ev.obj) is None:
                keys.append((ev.obj["metadata"]["namespace"], m.group(1)))
            return keys
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.store.all("statefulsets")]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        sts = self.store.get("statefulsets", ns, name)
        if sts is None:
            return None
        spec = sts["spec"]
        uid = sts["metadata"]["uid"]
        want = spec.get("replicas", 1)
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        revision = f"{name}-{template_hash(spec['template'])}"
        self._adopt(sts)
        pods = {
            int(m.group(2)): p
            for p in self.store.by_index("pods", "owner", uid)
            if (m := STS_POD_NAME.match(p["metadata"]["name"])) and m.group(1) == name
        }
        blocked = False
        for i in range(want):
            pod = pods.get(i)
            if pod is None:
                if blocked:
                    break
                existing = self.store.get("pods", ns, f"{name}-{i}")
                if existing is not None:
                    blocked = ordered  # same-named pod owned by something else, or still going
                    continue
                self._create_pod(sts, i, revision)
                if ordered:
                    blocked = True
                continue
            if "deletionTimestamp" in pod["metadata"] or pod_is_terminal(pod):
                if pod_is_terminal(pod) and "deletionTimestamp" not in pod["metadata"]:
                    self.registry.delete(
                        "pods",
                        ns,
                        pod["metadata"]["name"],
                        {"preconditions": {"uid": pod["metadata"]["uid"]}},
                    )
                if ordered:
                    blocked = True
                continue
            if ordered and not (pod["status"].get("phase") == "Running" and pod_is_ready(pod)):
                blocked = True
        # Condemned pods (ordinal >= replicas) go from the highest ordinal down.
        condemned = sorted((i for i in pods if i >= want), reverse=True)
        for i in condemned:
            p = pods[i]
            if "deletionTimestamp" not in p["metadata"]:
                self.registry.delete(
                    "pods", ns, p["metadata"]["name"], {"preconditions": {"uid": p["metadata"]["uid"]}}
                )
            if ordered:
                break
        live = _active(self.store.by_index("pods", "owner", uid))
        ready = sum(1 for p in live if pod_is_ready(p))
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": ready,
            "currentReplicas": len(live),
            "updatedReplicas": len(live),
            "availableReplicas": ready,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        _write_status(self.store, "statefulsets", sts, status)
        return None

    def _adopt(self, sts: Obj) -> None:
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        for p in sorted_by_name(self.store.by_index("pods", "orphan", ns)):
            m = STS_POD_NAME.match(p["metadata"]["name"])
            if (
                not m
                or m.group(1) != name
                or controller_of(p) is not None
                or "deletionTimestamp" in p["metadata"]
            ):
                continue
            if not label_selector_matches(sts["spec"].get("selector"), p["metadata"].get("labels") or {}):
                continue

            def adopt(cur: Obj) -> Obj:
                if controller_of(cur) is None:
                    cur["metadata"].setdefault("ownerReferences", []).append(owner_ref(sts))
                return cur

            self.store.mutate("pods", ns, p["metadata"]["name"], adopt)

    def _create_pod(self, sts: Obj, ordinal: int, revision: str) -> None:
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        spec = sts["spec"]
        pod_name = f"{name}-{ordinal}"
        pod = _pod_from_template(sts, spec["template"], pod_name, None)
        labels = pod["metadata"]["labels"]
        labels.update(
            {
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
                "controller-revision-hash": revision,
            }
        )
        pod["spec"]["hostname"] = pod_name
        if spec.get("serviceName"):
            pod["spec"]["subdomain"] = spec["serviceName"]
        volumes = pod["spec"].setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            cname = claim["metadata"]["name"]
            pvc_name = f"{cname}-{name}-{ordinal}"
            if self.store.get("persistentvolumeclaims", ns, pvc_name) is None:
                self.registry.create(
                    "persistentvolumeclaims",
                    ns,
                    {
                        "metadata": {
                            "name": pvc_name,
                            "labels": dict((spec.get("selector") or {}).get("matchLabels") or {}),
                        },
                        "spec": clone(claim.get("spec", {})),
                    },
                )
            volumes[:] = [v for v in volumes if v.get("name") != cname]
            volumes.append({"name": cname, "persistentVolumeClaim": {"claimName": pvc_name}})
        self.registry.create("pods", ns, pod)
        record_event(
            self.store,
            sts,
            "SuccessfulCreate",
            f"create Pod {pod_name} in StatefulSet {name} successful",
            component="statefulset-controller",
        )


DS_TOLERATIONS = [
    {"key": TAINT_NODE_NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": TAINT_NODE_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    {"key": TAINT_NODE_DISK_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
    {"key": TAINT_NODE_MEMORY_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
    {"key": TAINT_NODE_PID_PRESSURE, "operator": "Exists", "effect": "NoSchedule"},
    {"key": TAINT_NODE_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
]


class DaemonSetController(Controller[NamespacedKey]):
    name = "daemonset"

    def keys_for(self, ev: WatchEvent) -> Iterable[NamespacedKey]:
        if ev.resource.plural == "daemonsets":
            return ((ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]),)
        if ev.resource.plural == "pods":
            return _owner_keys(ev, "DaemonSet")
        if ev.resource.plural == "nodes":
            return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.store.all("daemonsets")]
        return ()

    def initial_keys(self) -> Iterable[NamespacedKey]:
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.store.all("daemonsets")]

    def reconcile(self, key: NamespacedKey) -> float | None:
        ns, name = key
        ds = self.store.get("daemonsets", ns, name)
        if ds is None:
            return None
        tmpl_spec = ds["spec"]["template"].get("spec", {})
        tolerations = list(tmpl_spec.get("tolerations") or []) + DS_TOLERATIONS
        view = {**tmpl_spec, "tolerations": tolerations}
        by_node: dict[str, list[Obj]] = {}
        for p in self.store.by_index("pods", "owner", ds["metadata"]["uid"]):
            by_node.setdefault(p["spec"].get("nodeName", ""), []).append(p)
        desired = scheduled = ready = misscheduled = 0
        for node in self.store.all("nodes"):
            nname = node["metadata"]["name"]
            fits = node_affinity_matches(tmpl_spec, node)
            taints = node["spec"].get("taints") or []
            no_execute = any(t.get("effect") == "NoExecute" and not tolerates(tolerations, t) for t in taints)
            no_schedule = any(
                t.get("effect") == "NoSchedule" and not tolerates(tolerations, t) for t in taints
            )
            should_run = fits and not no_execute
            should_schedule = should_run and not no_schedule
            pods = [p for p in by_node.get(nname, []) if "deletionTimestamp" not in p["metadata"]]
            if should_run:
                desired += 1 if should_schedule or pods else 0
            if pods and not should_run:
                misscheduled += 1
                for p in pods:
                    self.registry.delete(
                        "pods", ns, p["metadata"]["name"], {"preconditions": {"uid": p["metadata"]["uid"]}}
                    )
                continue
            if pods:
                scheduled += 1
                ready += 1 if any(pod_is_ready(p) for p in pods) else 0
                for p in pods:
                    if pod_is_terminal(p):
                        self.registry.delete(
                            "pods",
                            ns,
                            p["metadata"]["name"],
                            {"preconditions": {"uid": p["metadata"]["uid"]}},
                        )
            elif should_schedule and not by_node.get(nname):
                pod = _pod_from_template(ds, ds["spec"]["template"], None, f"{name}-")
                pod["spec"]["nodeName"] = nname
                pod["spec"]["tolerations"] = view["tolerations"]
                self.registry.create("pods", ns, pod)
        status = {
            "currentNumberScheduled": scheduled,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": scheduled,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        _write_status(self.store, "daemonsets", ds, status)
        return None


def _write_status(store: Store, plural: str, obj: Obj, status: Obj) -> None:
    if {k: (obj.get("status") or {}).get(k) for k in status} == status:
        return

    def put(cur: Obj) -> Obj:
        cur["status"] = {**(cur.get("status") or {}), **status}
        return cur

    try:
        store.mutate(plural, obj["metadata"].get("namespace"), obj["metadata"]["name"], put)
    except ApiError as exc:
        if exc.code != 404:
            raise


__all__ = [
    "DaemonSetController",
    "DeploymentController",
    "ReplicaSetController",
    "StatefulSetController",
    "node_is_ready",
]
