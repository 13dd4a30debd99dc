"""The pods/eviction subresource, following pkg/registry/core/pod/storage/eviction.go.

What matters for realism: the PDB's disruptionsAllowed is decremented synchronously, so two
back-to-back evictions under `maxUnavailable: 1` answer 201 then 429 before the first pod has even
started terminating; a PDB-blocked eviction is 429 with no Retry-After; more than one matching PDB
is a 500.
"""

from __future__ import annotations

from .errors import ApiError, bad_request, forbidden
from .objects import condition, pod_is_ready, pod_is_terminal, set_condition
from .registry import Registry
from .selection import selecting
from .selectors import label_selector_matches
from .store import Obj, timestamp

MAX_DISRUPTED_PODS = 2000
SUCCESS: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def _too_many(cause: str, retry_after: int | None) -> ApiError:
    details: Obj = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    headers = {}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return ApiError(429, "TooManyRequests", VIOLATION, details, headers)


def evict(reg: Registry, namespace: str, name: str, body: Obj, *, dry_run: bool = False) -> Obj:
    store = reg.store
    md = body.get("metadata") or {}
    # EvictionREST.Create compares `name != eviction.Name`: a body without metadata.name is a
    # mismatch too (the create handler does not default it from the URL).
    if md.get("name", "") != name:
        raise bad_request("name in URL does not match name in Eviction object")
    options: Obj = dict(body.get("deleteOptions") or {})
    dry_run = dry_run or "All" in (options.get("dryRun") or [])
    with store.lock:
        pod = store.require("pods", namespace, name)
        # canIgnorePDB: pending, finished or already terminating pods are simply deleted.
        if (
            pod["status"].get("phase") == "Pending"
            or pod_is_terminal(pod)
            or "deletionTimestamp" in pod["metadata"]
        ):
            # shouldEnforceResourceVersion: not for terminal or already terminating pods.
            pin = not pod_is_terminal(pod) and "deletionTimestamp" not in pod["metadata"]
            _delete(reg, pod, options, dry_run, pin_rv=pin)
            return SUCCESS
        labels = pod["metadata"].get("labels") or {}
        # Candidates from the selector index, not every PDB of the namespace: this runs under the
        # store's one lock, and with hundreds of drains at once evictions queued on it (py-spy:
        # 454 of them in a 300-node roll; a scan of 450 PDBs was 0.28 ms, the index 0.005 ms).
        pdbs = [
            p
            for p in selecting(store, "poddisruptionbudgets", namespace, [labels])
            if label_selector_matches(p["spec"].get("selector"), labels)
        ]
        if len(pdbs) > 1:
            # Returned as a Status{Failure, Code: 500} with no reason; finisher.go turns it into an
            # error as is (errors.FromObject), so the body carries no `reason`.
            raise ApiError(
                500,
                "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        if not pdbs:
            _delete(reg, pod, options, dry_run, pin_rv=False)
            return SUCCESS
        pdb = pdbs[0]
        status = pdb.get("status", {})
        if not pod_is_ready(pod):
            policy = pdb["spec"].get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
            healthy_enough = status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0
            if policy == "AlwaysAllow" or healthy_enough:
                _delete(reg, pod, options, dry_run, pin_rv=True, pdb_name=pdb["metadata"]["name"])
                return SUCCESS
        _check_and_decrement(reg, pdb, pod, dry_run)
        _delete(reg, pod, options, dry_run, pin_rv=False)
    return SUCCESS


def _check_and_decrement(reg: Registry, pdb: Obj, pod: Obj, dry_run: bool) -> None:
    name = pdb["metadata"]["name"]
    status = pdb.get("status", {})
    if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
        raise _too_many(f"The disruption budget {name} is still being processed by the server.", 10)
    allowed = status.get("disruptionsAllowed", 0)
    # errors.NewForbidden(policy.Resource("poddisruptionbudget"), pdb.Name, err) in checkAndDecrement.
    if allowed < 0:
        raise forbidden("poddisruptionbudget.policy", name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise forbidden(
            "poddisruptionbudget.policy",
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        raise _too_many(
            f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
            f"and has {status.get('currentHealthy', 0)} currently",
            None,
        )
    if dry_run:
        return

    def decrement(cur: Obj) -> Obj:
        st = cur.setdefault("status", {})
        st["disruptionsAllowed"] = st.get("disruptionsAllowed", 0) - 1
        st.setdefault("disruptedPods", {})[pod["metadata"]["name"]] = timestamp()
        if st["disruptionsAllowed"] == 0:
            # pdbhelper.UpdateDisruptionAllowedCondition: a metav1.Condition, whose `message` is
            # not omitempty (the client requires it), and which has no lastProbeTime.
            st["conditions"] = set_condition(
                st.get("conditions", []),
                {
                    **condition("DisruptionAllowed", False, "InsufficientPods", ""),
                    "message": "",
                    "observedGeneration": st.get("observedGeneration", cur["metadata"].get("generation", 1)),
                },
            )
            for c in st["conditions"]:
                c.pop("lastProbeTime", None)
        return cur

    reg.store.mutate(
        "poddisruptionbudgets",
        pdb["metadata"]["namespace"],
        name,
        decrement,
        expect_rv=pdb["metadata"]["resourceVersion"],
    )


def _delete(
    reg: Registry, pod: Obj, options: Obj, dry_run: bool, *, pin_rv: bool, pdb_name: str | None = None
) -> None:
    """addConditionAndDeletePod. `pin_rv`: the handler itself adds a resourceVersion precondition
    (unless the client set one), so a pod that turned Ready meanwhile is not deleted."""
    if dry_run:
        return
    md = pod["metadata"]
    pre = dict(options.get("preconditions") or {})
    client_rv = bool(pre.get("resourceVersion"))
    if pin_rv and not client_rv:
        pre["resourceVersion"] = md["resourceVersion"]

    # PodDisruptionConditions (GA 1.31): mark the pod, whatever its phase, before deleting it. The
    # preconditions are checked against the latest pod first (getLatestPod), so a failed
    # precondition leaves the pod untouched.
    def mark(cur: Obj) -> Obj:
        st = cur.setdefault("status", {})
        st["conditions"] = set_condition(
            st.get("conditions", []),
            condition("DisruptionTarget", True, "EvictionByEvictionAPI", "Eviction API: evicting"),
        )
        return cur

    try:
        reg.store.mutate(
            "pods",
            md["namespace"],
            md["name"],
            mark,
            expect_rv=pre.get("resourceVersion"),
            expect_uid=pre.get("uid"),
        )
    except ApiError as exc:
        # Only a conflict on the handler's own precondition becomes a 429 (EvictionREST.Create:
        # IsConflict && updateDeletionOptions && the client set no resourceVersion).
        if exc.code == 409 and pin_rv and not client_rv and pdb_name:
            raise _too_many(
                f"The disruption budget {pdb_name} is still being processed by the server.", 10
            ) from exc
        raise
    # The update bumped the resourceVersion; the delete is pinned to the pod it just wrote.
    pre.pop("resourceVersion", None)
    rest = {k: v for k, v in options.items() if k != "preconditions"}
    reg.delete("pods", md["namespace"], md["name"], {**rest, "preconditions": pre} if pre else rest)


class Eviction:
    """The pods/eviction REST endpoint, built on the registry as storage.go's NewStorage builds
    EvictionREST on the pod store: eviction depends on the registry, never the reverse."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(self, namespace: str, name: str, body: Obj, *, dry_run: bool = False) -> Obj:
        return evict(self.registry, namespace, name, body, dry_run=dry_run)
