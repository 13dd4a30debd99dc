"""Contract of the pods/eviction subresource, one row per behaviour of the real apiserver.

Every row names the upstream code it mirrors (kubernetes/kubernetes). The request is sent with the
official client's `create_namespaced_pod_eviction`, so it is exactly what real code sends (v37: no
Content-Type header). Unless a row says otherwise, the controllers are frozen once the scene is
arranged: what is asserted afterwards is what the eviction handler alone did, synchronously.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b

EVICTION_GO = "pkg/registry/core/pod/storage/eviction.go"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


# --- scenes (Given) --------------------------------------------------------------------------------
@dataclass
class Scene:
    sb: Sandbox
    pods: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def v1(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.sb.client())

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.sb.store.get("pods", "default", name)

    def pdb(self, name: str = "web") -> dict[str, Any]:
        return self.sb.store.require("poddisruptionbudgets", "default", name)


def _web(sb: Sandbox, replicas: int = 2, **pdb_kw: Any) -> Scene:
    """Two Ready nodes, Deployment `web` with `replicas` Ready pods and (if `pdb_kw`) PDB `web`."""
    b.make_ready_node(sb, 1, b.AZS[0])
    b.make_ready_node(sb, 2, b.AZS[1])
    sb.apply(b.deployment("web", replicas))
    pods = b.wait_ready(sb, replicas, selector="app=web")
    if pdb_kw:
        sb.apply(b.pdb("web", **pdb_kw))
        if sb.timings.pdb_sync_s == 0:
            b.pdb_synced(sb, "web")
    return Scene(sb, sorted(p["metadata"]["name"] for p in pods))


def _with_unready_pod(scene: Scene) -> Scene:
    """Add a bare pod labelled app=web that runs but never turns Ready (unmet readiness gate)."""
    sb = scene.sb
    sb.apply(b.pod("web-unready", labels={"app": "web"}, readinessGates=b.never_ready_gate()))

    def running() -> bool:
        p = scene.pod("web-unready")
        return bool(p and p["status"].get("phase") == "Running")

    sb.wait_for(running, timeout=5, what="web-unready running")
    scene.pods.insert(0, "web-unready")
    return scene


def given_no_pdb(sb: Sandbox) -> Scene:
    return _web(sb, 1)


def given_budget_exhausted(sb: Sandbox) -> Scene:
    return _web(sb, 2, min_available=2)


def given_generation_ahead(sb: Sandbox) -> Scene:
    # The disruption controller lags (Timings.pdb_sync_s): status.observedGeneration 0 < generation 1.
    return _web(sb, 2, max_unavailable=1)


def given_two_pdbs(sb: Sandbox) -> Scene:
    scene = _web(sb, 2, max_unavailable=1)
    sb.apply(b.pdb("web-everything", selector={}, max_unavailable=1))
    b.pdb_synced(sb, "web-everything")
    return scene


def given_first_eviction_consumed_budget(sb: Sandbox) -> Scene:
    scene = _web(sb, 2, max_unavailable=1)
    b.freeze_controllers(sb)
    first = scene.pods[0]
    out = scene.v1.create_namespaced_pod_eviction(first, "default", _eviction(first))
    assert out.kind == "Status"
    scene.notes["first"] = first
    scene.pods = scene.pods[1:]
    return scene


def given_unready_always_allow_zero_budget(sb: Sandbox) -> Scene:
    # 2 ready + 1 unready, minAvailable 2: currentHealthy 2, desiredHealthy 2, disruptionsAllowed 0.
    scene = _with_unready_pod(_web(sb, 2))
    sb.apply(b.pdb("web", min_available=2, unhealthy_pod_eviction_policy="AlwaysAllow"))
    b.pdb_synced(sb, "web")
    return scene


def given_unready_if_healthy_budget(min_available: int) -> Callable[[Sandbox], Scene]:
    def given(sb: Sandbox) -> Scene:
        scene = _with_unready_pod(_web(sb, 2))
        sb.apply(b.pdb("web", min_available=min_available))  # default policy: IfHealthyBudget
        b.pdb_synced(sb, "web")
        return scene

    return given


def given_pending_pod(sb: Sandbox) -> Scene:
    scene = _web(sb, 2, min_available=2)
    sb.apply(b.pod("web-pending", labels={"app": "web"}, nodeSelector={"no-such-label": "x"}))
    scene.pods = ["web-pending"]
    return scene


def given_terminating_pod(sb: Sandbox) -> Scene:
    scene = _web(sb, 2, min_available=2)
    b.freeze_controllers(sb)
    scene.v1.delete_namespaced_pod(scene.pods[0], "default")
    scene.notes["uid"] = scene.pod(scene.pods[0])["metadata"]["uid"]  # type: ignore[index]
    return scene


def given_pdb_status(**status: Any) -> Callable[[Sandbox], Scene]:
    """A PDB whose status the controller would never write (only reachable by a racing writer)."""

    def given(sb: Sandbox) -> Scene:
        scene = _web(sb, 2, max_unavailable=1)
        b.freeze_controllers(sb)
        sb.store.mutate("poddisruptionbudgets", "default", "web", lambda p: p["status"].update(status))
        return scene

    return given


# --- rows ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    id: str
    upstream: str
    given: Callable[[Sandbox], Scene]
    code: int
    body: dict[str, Any] | None = None  # exact response body, when given
    message: str | None = None
    reason: str | None = None
    retry_after: str | None = None  # None: the header must be absent
    url_name: str | None = None  # evict this name instead of the scene's first pod
    body_name: str | None = None  # put this name in the Eviction's metadata
    delete_options: dict[str, Any] | None = None
    dry_run: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    then: Callable[[Scene, str], None] | None = None


def _budget_429(pdb: str, desired: int, healthy: int) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": VIOLATION,
        "reason": "TooManyRequests",
        "details": {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pdb} needs {desired} healthy pods and has {healthy} currently",
                }
            ]
        },
        "code": 429,
    }


def _is_evicted(scene: Scene, name: str) -> None:
    pod = scene.pod(name)
    assert pod is not None, "graceful eviction keeps the pod until the kubelet is done"
    assert "deletionTimestamp" in pod["metadata"]
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True",
        "EvictionByEvictionAPI",
        "Eviction API: evicting",
    )


def _untouched(scene: Scene, name: str) -> None:
    pod = scene.pod(name)
    assert pod is not None and "deletionTimestamp" not in pod["metadata"]
    assert all(c["type"] != "DisruptionTarget" for c in pod["status"]["conditions"])


def _not_decremented(scene: Scene, name: str) -> None:
    _is_evicted(scene, name)
    st = scene.pdb()["status"]
    assert st["disruptionsAllowed"] == scene.notes.get("allowed_before", st["disruptionsAllowed"])
    assert name not in (st.get("disruptedPods") or {})


def _decremented(scene: Scene, name: str) -> None:
    _is_evicted(scene, name)
    st = scene.pdb()["status"]
    assert st["disruptionsAllowed"] == 1, st
    assert name in st["disruptedPods"]


def _then_second_blocked(scene: Scene, name: str) -> None:
    # The first pod has not terminated (kubelet frozen): only the synchronous decrement blocks this.
    _is_evicted(scene, scene.notes["first"])
    _untouched(scene, name)
    st = scene.pdb()["status"]
    assert st["disruptionsAllowed"] == 0
    assert list(st["disruptedPods"]) == [scene.notes["first"]]
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")


def _then_gone(scene: Scene, name: str) -> None:
    assert scene.pod(name) is None, "an unscheduled pod is deleted at once (CheckGracefulDelete)"


def _then_still_terminating(scene: Scene, name: str) -> None:
    pod = scene.pod(name)
    assert pod is not None and pod["metadata"]["uid"] == scene.notes["uid"]
    assert "deletionTimestamp" in pod["metadata"]


def _then_nothing_changed(scene: Scene, name: str) -> None:
    _untouched(scene, name)
    st = scene.pdb()["status"]
    assert st["disruptionsAllowed"] == 1 and not st.get("disruptedPods")


ROWS = [
    Row(
        "no-pdb-201",
        f"EvictionREST.Create: no PDB -> addConditionAndDeletePod, StatusSuccess ({EVICTION_GO})",
        given_no_pdb,
        201,
        body=SUCCESS,
        then=_is_evicted,
    ),
    Row(
        "budget-exhausted-429-no-retry-after",
        f"checkAndDecrement: DisruptionsAllowed == 0 -> NewTooManyRequests(..., 0) ({EVICTION_GO}; #36409)",
        given_budget_exhausted,
        429,
        body=_budget_429("web", 2, 2),
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "generation-ahead-429-retry-after-10",
        f"checkAndDecrement: ObservedGeneration < Generation -> createTooManyRequestsError ({EVICTION_GO})",
        given_generation_ahead,
        429,
        body={
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": VIOLATION,
            "reason": "TooManyRequests",
            "details": {
                "causes": [
                    {
                        "reason": "DisruptionBudget",
                        "message": "The disruption budget web is still being processed by the server.",
                    }
                ],
                "retryAfterSeconds": 10,
            },
            "code": 429,
        },
        retry_after="10",
        timings={"pdb_sync_s": 60.0},
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "two-pdbs-500",
        f"EvictionREST.Create: len(pdbs) > 1 -> Status{{Failure, 500}}, no reason ({EVICTION_GO}; "
        "apiserver finisher.go result.Return -> errors.FromObject)",
        given_two_pdbs,
        500,
        body={
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            "code": 500,
        },
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "missing-pod-404",
        f"getPod -> NewNotFound ({EVICTION_GO})",
        given_no_pdb,
        404,
        body={
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'pods "no-such-pod" not found',
            "reason": "NotFound",
            "details": {"name": "no-such-pod", "kind": "pods"},
            "code": 404,
        },
        url_name="no-such-pod",
    ),
    Row(
        "name-mismatch-400",
        f"EvictionREST.Create: name != eviction.Name -> NewBadRequest ({EVICTION_GO})",
        given_no_pdb,
        400,
        message="name in URL does not match name in Eviction object",
        reason="BadRequest",
        body_name="someone-else",
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "missing-body-name-400",
        f"EvictionREST.Create: name != eviction.Name, an empty name included ({EVICTION_GO})",
        given_no_pdb,
        400,
        message="name in URL does not match name in Eviction object",
        reason="BadRequest",
        body_name="",
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "back-to-back-second-429",
        f"checkAndDecrement: DisruptionsAllowed-- written to PDB status synchronously ({EVICTION_GO})",
        given_first_eviction_consumed_budget,
        429,
        body=_budget_429("web", 1, 2),
        then=_then_second_blocked,
    ),
    Row(
        "unready-always-allow-at-zero-budget-201",
        f"EvictionREST.Create: !IsPodReady && UnhealthyPodEvictionPolicy == AlwaysAllow ({EVICTION_GO})",
        given_unready_always_allow_zero_budget,
        201,
        body=SUCCESS,
        then=_not_decremented,
    ),
    Row(
        "unready-if-healthy-budget-enough-healthy-201",
        f"EvictionREST.Create: CurrentHealthy >= DesiredHealthy && DesiredHealthy > 0, no decrement ({EVICTION_GO})",
        given_unready_if_healthy_budget(2),
        201,
        body=SUCCESS,
        then=_not_decremented,
    ),
    Row(
        "unready-if-healthy-budget-too-few-healthy-429",
        f"EvictionREST.Create: CurrentHealthy < DesiredHealthy -> checkAndDecrement ({EVICTION_GO})",
        given_unready_if_healthy_budget(3),
        429,
        body=_budget_429("web", 3, 2),
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "unready-if-healthy-budget-desired-zero-decrements",
        f"EvictionREST.Create: DesiredHealthy == 0 -> checkAndDecrement decrements ({EVICTION_GO})",
        given_unready_if_healthy_budget(0),
        201,
        body=SUCCESS,
        then=_decremented,
    ),
    Row(
        "pending-pod-ignores-pdb",
        f"canIgnorePDB: PodPending ({EVICTION_GO})",
        given_pending_pod,
        201,
        body=SUCCESS,
        then=_then_gone,
    ),
    Row(
        "terminating-pod-ignores-pdb",
        f"canIgnorePDB: DeletionTimestamp set ({EVICTION_GO})",
        given_terminating_pod,
        201,
        body=SUCCESS,
        then=_then_still_terminating,
    ),
    Row(
        "dry-run-all-changes-nothing",
        f"propagateDryRun + checkAndDecrement(dryRun) returns before UpdateStatus ({EVICTION_GO})",
        lambda sb: _web(sb, 2, max_unavailable=1),
        201,
        body=SUCCESS,
        dry_run=True,
        then=_then_nothing_changed,
    ),
    Row(
        "dry-run-still-checks-budget-429",
        f"checkAndDecrement runs before the dry-run early return ({EVICTION_GO})",
        given_budget_exhausted,
        429,
        body=_budget_429("web", 2, 2),
        dry_run=True,
    ),
    Row(
        "negative-disruptions-403",
        f"checkAndDecrement: DisruptionsAllowed < 0 -> NewForbidden ({EVICTION_GO})",
        given_pdb_status(disruptionsAllowed=-1),
        403,
        body={
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'poddisruptionbudget.policy "web" is forbidden: pdb disruptions allowed is negative',
            "reason": "Forbidden",
            "details": {"name": "web", "group": "policy", "kind": "poddisruptionbudget"},
            "code": 403,
        },
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "disrupted-pods-map-too-big-403",
        f"checkAndDecrement: len(DisruptedPods) > MaxDisruptedPodSize ({EVICTION_GO})",
        given_pdb_status(disruptedPods={f"gone-{i}": "2025-01-01T00:00:00Z" for i in range(2001)}),
        403,
        message='poddisruptionbudget.policy "web" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller',
        reason="Forbidden",
    ),
    Row(
        "client-rv-precondition-stale-409",
        f"addConditionAndDeletePod: getLatestPod precondition check; a client-set RV is not turned into 429 ({EVICTION_GO})",
        given_no_pdb,
        409,
        reason="Conflict",
        delete_options={"preconditions": {"resourceVersion": "1"}},
        then=lambda s, n: _untouched(s, n),
    ),
    Row(
        "client-uid-precondition-mismatch-409",
        f"addConditionAndDeletePod: getLatestPod UID precondition, checked before the condition update ({EVICTION_GO})",
        given_no_pdb,
        409,
        reason="Conflict",
        delete_options={"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}},
        then=lambda s, n: _untouched(s, n),
    ),
]


def _eviction(name: str, delete_options: dict[str, Any] | None = None) -> client.V1Eviction:
    opts = None
    if delete_options:
        pre = delete_options.get("preconditions") or {}
        opts = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(
                uid=pre.get("uid"), resource_version=pre.get("resourceVersion")
            )
        )
    meta = client.V1ObjectMeta(name=name or None, namespace="default")
    return client.V1Eviction(metadata=meta, delete_options=opts)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_eviction_contract(row: Row, make_sandbox: Callable[..., Sandbox]) -> None:
    # Given the row's scene, with the controllers frozen so only the handler acts
    sb = make_sandbox(**row.timings)
    scene = row.given(sb)
    b.freeze_controllers(sb)
    pdb = sb.store.get("poddisruptionbudgets", "default", "web")
    if pdb is not None:
        scene.notes["allowed_before"] = pdb["status"].get("disruptionsAllowed")
    name = row.url_name or scene.pods[0]
    mark = sb.request_log.mark()

    # When the official client POSTs the eviction
    v1 = scene.v1
    kwargs: dict[str, Any] = {"dry_run": "All"} if row.dry_run else {}
    try:
        resp = v1.create_namespaced_pod_eviction(
            name,
            "default",
            _eviction(name if row.body_name is None else row.body_name, row.delete_options),
            _preload_content=False,
            **kwargs,
        )
        code, raw, headers = resp.status, resp.data, resp.headers
    except client.ApiException as exc:
        code, raw, headers = exc.status, exc.body, exc.headers or {}

    # Then the status, body and headers are the apiserver's
    body = json.loads(raw)
    assert code == row.code, f"{row.upstream}: got {code} {body}"
    assert body.get("code") == row.code
    if row.body is not None:
        assert body == row.body, row.upstream
    if row.message is not None:
        assert body["message"] == row.message
    if row.reason is not None:
        assert body.get("reason") == row.reason
    assert headers.get("Retry-After") == row.retry_after, f"Retry-After: {dict(headers)}"
    # ...the request is what v37 sends: no Content-Type on the eviction POST, and it was accepted
    sent = [e for e in sb.request_log.entries(mark) if e.path.endswith("/eviction")]
    assert [e.content_type for e in sent] == [None]
    if row.then is not None:
        row.then(scene, name)


def test_delete_ignores_pdbs(sb: Sandbox) -> None:
    """A plain DELETE is not an eviction: the PDB is not consulted (pkg/registry/core/pod/storage)."""
    # Given a PDB that allows no disruption
    scene = _web(sb, 2, min_available=2)
    assert scene.pdb()["status"]["disruptionsAllowed"] == 0
    # When a pod is deleted directly
    out = scene.v1.delete_namespaced_pod(scene.pods[0], "default")
    # Then it is terminating, with no DisruptionTarget condition and the budget untouched
    assert out.metadata.deletion_timestamp is not None
    pod = scene.pod(scene.pods[0])
    assert pod is None or all(c["type"] != "DisruptionTarget" for c in pod["status"]["conditions"])
    assert not scene.pdb()["status"].get("disruptedPods")


def test_eviction_success_deserialises_as_v1_eviction(sb: Sandbox) -> None:
    """The v37 client maps the 201 Status onto V1Eviction (kind='Status'), without raising."""
    scene = _web(sb, 1)
    out = scene.v1.create_namespaced_pod_eviction(scene.pods[0], "default", _eviction(scene.pods[0]))
    assert isinstance(out, client.V1Eviction) and out.kind == "Status"
