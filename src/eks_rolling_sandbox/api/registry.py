"""API semantics on top of the store: what kube-apiserver's registry/strategy layer does.

The HTTP server and in-process callers (controllers, the cloud bridge, tests) both go through here,
so a pod deleted by a controller terminates as gracefully as one deleted by a client.

Upstream: staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go (the generic store)
and the per-resource strategies, pkg/registry/core/pod/strategy.go for graceful pod deletion.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from . import objects
from .errors import ApiError, bad_request, conflict, invalid, method_not_allowed, not_found, unsupported_media
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import BY_PLURAL, Resource
from .selectors import selector_to_string
from .store import Obj, Store, clone, timestamp, utcnow

PATCH_TYPES = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
}

SCALABLE = {"deployments", "replicasets", "statefulsets"}


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- create --------------------------------------------------------------------------------
    def create(self, plural: str, namespace: str | None, body: Obj, *, dry_run: bool = False) -> Obj:
        res = BY_PLURAL[plural]
        obj = clone(body)
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") and namespace and md["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = namespace or md.get("namespace") or "default"
            if self.store.get("namespaces", None, md["namespace"]) is None and plural != "events":
                raise not_found("namespaces", md["namespace"])
        for f in ("resourceVersion", "uid", "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(f, None)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        objects.default_object(plural, obj)
        objects.validate_object(plural, obj)
        if plural == "pods":
            # status is the kubelet's; a client cannot create a Running pod.
            obj["status"] = {"phase": "Pending", "qosClass": obj["status"].get("qosClass", "BestEffort")}
        if dry_run:
            obj["metadata"].setdefault("creationTimestamp", timestamp())
            return obj
        return self.store.create(plural, obj)

    # --- read ----------------------------------------------------------------------------------
    def get(self, plural: str, namespace: str | None, name: str) -> Obj:
        return self.store.require(plural, namespace, name)

    # --- update / patch ------------------------------------------------------------------------
    def update(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        if subresource == "scale":
            return self._set_scale(plural, namespace, name, body, dry_run=dry_run)
        if body.get("metadata", {}).get("name") not in (None, name):
            raise bad_request(
                "the name of the object ({}) does not match the name on the URL ({})".format(
                    body["metadata"]["name"], name
                )
            )
        expect_rv = body.get("metadata", {}).get("resourceVersion") or None
        return self._write(
            plural,
            namespace,
            name,
            lambda cur: clone(body),
            subresource=subresource,
            expect_rv=expect_rv,
            dry_run=dry_run,
        )

    def patch(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        ptype = PATCH_TYPES.get(content_type.split(";")[0].strip())
        if ptype is None:
            raise unsupported_media(content_type)
        if subresource == "scale":
            # Read, patch and write the scale under the store lock: the Scale read carries the
            # current resourceVersion, which must not turn into a precondition that a concurrent
            # status write by a controller would break (only an RV in the patch itself is one).
            with self.store.lock:
                cur_scale = self.get_scale(plural, namespace, name)
                new_scale = _apply_patch(ptype, cur_scale, patch)
                return self._set_scale(plural, namespace, name, new_scale, dry_run=dry_run)
        # A resourceVersion the patch leaves in the object is a precondition, whatever the patch
        # type (checked in _write against the object the patch was applied to).
        return self._write(
            plural,
            namespace,
            name,
            lambda cur: _apply_patch(ptype, cur, patch),
            subresource=subresource,
            expect_rv=None,
            dry_run=dry_run,
        )

    def _write(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        produce: Any,
        *,
        subresource: str | None,
        expect_rv: str | None,
        dry_run: bool,
    ) -> Obj:
        res = BY_PLURAL[plural]
        if subresource not in (None, "status"):
            raise not_found(f"{res.qualified}/{subresource}", name)

        def apply(cur: Obj) -> Obj:
            new = produce(cur)
            if not isinstance(new, dict):
                raise bad_request("the patched object is not an object")
            new.setdefault("metadata", {})
            if new["metadata"].get("name", name) != name:
                raise bad_request("the name of the object does not match the name on the URL")
            # registry/generic/registry/store.go Update: an object carrying a resourceVersion other
            # than the stored one is a conflict (an RV in a patch body survives the patch, so it
            # is a precondition too); none means an unconditional update.
            rv = new["metadata"].get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res.qualified, name)
            new["apiVersion"], new["kind"] = res.api_version, res.kind
            if res.namespaced:
                new["metadata"]["namespace"] = cur["metadata"]["namespace"]
            return self._merge_update(res, cur, new, subresource)

        if dry_run:
            cur = self.store.require(plural, namespace, name)
            if expect_rv and expect_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res.qualified, name)
            return apply(clone(cur))
        return self.store.mutate(plural, namespace, name, apply, expect_rv=expect_rv)

    def _merge_update(self, res: Resource, cur: Obj, new: Obj, subresource: str | None) -> Obj:
        if subresource == "status":
            # /status writes only status (and nothing of spec or metadata but labels/annotations).
            out = clone(cur)
            out["status"] = new.get("status", {})
            return out
        if res.has_status:
            new["status"] = clone(cur.get("status", {}))
        objects.default_object(res.plural, new)
        objects.validate_object(res.plural, new)
        if res.plural == "pods":
            objects.validate_pod_update(cur, new)
            new["status"] = clone(cur.get("status", {}))
        md, cmd = new["metadata"], cur["metadata"]
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in cmd:
                md[f] = cmd[f]
            else:
                md.pop(f, None)
        if res.generation:
            md["generation"] = cmd.get("generation", 1) + (1 if new.get("spec") != cur.get("spec") else 0)
        return new

    # --- scale subresource ---------------------------------------------------------------------
    def get_scale(self, plural: str, namespace: str | None, name: str) -> Obj:
        if plural not in SCALABLE:
            raise not_found(f"{BY_PLURAL[plural].qualified}/scale", name)
        obj = self.store.require(plural, namespace, name)
        md = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: md[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in md
            },
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": selector_to_string(obj["spec"].get("selector")),
            },
        }

    def _set_scale(self, plural: str, namespace: str | None, name: str, scale: Obj, *, dry_run: bool) -> Obj:
        if plural not in SCALABLE:
            raise not_found(f"{BY_PLURAL[plural].qualified}/scale", name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(
                "Scale",
                name,
                [
                    {
                        "field": "spec.replicas",
                        "message": f"Invalid value: {replicas}: must be greater than or equal to 0",
                    }
                ],
            )
        expect_rv = (scale.get("metadata") or {}).get("resourceVersion") or None

        def apply(cur: Obj) -> Obj:
            if cur["spec"].get("replicas") != replicas:
                cur["spec"]["replicas"] = replicas
                cur["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
            return cur

        if not dry_run:
            self.store.mutate(plural, namespace, name, apply, expect_rv=expect_rv)
        scale_out = self.get_scale(plural, namespace, name)
        scale_out["spec"]["replicas"] = replicas
        return scale_out

    # --- delete --------------------------------------------------------------------------------
    def delete(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        options: Obj | None = None,
        *,
        dry_run: bool = False,
    ) -> Obj:
        """Returns the object: still present (terminating) for graceful pod deletion, else its last state."""
        options = options or {}
        pre = options.get("preconditions") or {}
        cur = self.store.require(plural, namespace, name)
        if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
            raise conflict(
                BY_PLURAL[plural].qualified,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {cur['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise conflict(BY_PLURAL[plural].qualified, name)
        if dry_run:
            return cur
        if plural == "pods":
            return self._delete_pod(cur, options)
        return self.store.delete(plural, namespace, name, expect_uid=pre.get("uid"))

    def _delete_pod(self, pod: Obj, options: Obj) -> Obj:
        md = pod["metadata"]
        ns, name = md["namespace"], md["name"]
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        grace = max(int(grace), 0)
        # CheckGracefulDelete: unscheduled or finished pods go at once; grace 0 is a force delete.
        if not pod["spec"].get("nodeName") or objects.pod_is_terminal(pod) or grace == 0:
            return self.store.delete("pods", ns, name, expect_uid=md["uid"])
        deadline = utcnow() + timedelta(seconds=grace)

        def mark(cur: Obj) -> Obj:
            cm = cur["metadata"]
            if "deletionTimestamp" in cm and cm.get("deletionGracePeriodSeconds", grace) <= grace:
                return cur  # already terminating with a shorter or equal grace
            cm["deletionTimestamp"] = timestamp(deadline)
            cm["deletionGracePeriodSeconds"] = grace
            return cur

        return self.store.mutate("pods", ns, name, mark, expect_uid=md["uid"])

    def unsupported(self) -> ApiError:
        return method_not_allowed()


def _apply_patch(ptype: str, cur: Obj, patch: Any) -> Any:
    if ptype == "json":
        if not isinstance(patch, list):
            raise bad_request("json patch must be a list of operations")
        return json_patch(cur, patch)
    if not isinstance(patch, dict):
        raise bad_request("patch body must be a JSON object")
    return merge_patch(cur, patch) if ptype == "merge" else strategic_merge_patch(cur, patch)
