"""PodDisruptionBudget status arithmetic, as the disruption controller computes it.

Upstream: pkg/controller/disruption/disruption.go (kubernetes/kubernetes) — getExpectedPodCount,
getExpectedScale and the finders (getPodReplicaSet/getPodDeployment/getPodStatefulSet),
countHealthyPods, buildDisruptedPodMap and updatePdbStatus; the conditions come from
pkg/apis/policy/helper (UpdateDisruptionAllowedCondition).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from eks_rolling.labels import LABEL_HOSTNAME
from eks_rolling_sandbox.api.store import timestamp, utcnow
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b

DISRUPTION_GO = "pkg/controller/disruption/disruption.go"


# --- scenes (Given) --------------------------------------------------------------------------------
def _nodes(sb: Sandbox, n: int = 3) -> None:
    for k in range(1, n + 1):
        b.make_ready_node(sb, k, b.AZS[(k - 1) % 3])


def deployment_of(replicas: int) -> Callable[[Sandbox], None]:
    def given(sb: Sandbox) -> None:
        _nodes(sb)
        sb.apply(b.deployment("web", replicas))
        b.wait_ready(sb, replicas, selector="app=web")

    return given


def statefulset_of(replicas: int) -> Callable[[Sandbox], None]:
    def given(sb: Sandbox) -> None:
        _nodes(sb)
        sb.apply(b.statefulset("web", replicas, claim=None, policy="Parallel"))
        b.wait_ready(sb, replicas, selector="app=web")

    return given


def deployment_with_unschedulable_replica(sb: Sandbox) -> None:
    # 3 replicas that refuse to share a node, on 2 nodes: 2 Ready, 1 Pending.
    _nodes(sb, 2)
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": LABEL_HOSTNAME}
            ]
        }
    }
    sb.apply(b.deployment("web", 3, template_spec=b.pod_spec(affinity=anti)))
    b.wait_ready(sb, 2, selector="app=web")
    sb.wait_for(lambda: len(sb.pods("default", "app=web")) == 3, timeout=5, what="3 pods")


def bare_pods(n: int, *, unready: int = 0, terminating: int = 0) -> Callable[[Sandbox], None]:
    """`n` unmanaged Ready pods labelled app=web, plus `unready` that never turn Ready; then
    `terminating` of the Ready ones are deleted (they stay Terminating: pod_exit_s is long)."""

    def given(sb: Sandbox) -> None:
        _nodes(sb)
        for i in range(n):
            sb.apply(b.pod(f"web-{i}", labels={"app": "web"}))
        for i in range(unready):
            sb.apply(b.pod(f"web-unready-{i}", labels={"app": "web"}, readinessGates=b.never_ready_gate()))
        b.wait_ready(sb, n, selector="app=web")
        for i in range(terminating):
            sb.registry.delete("pods", "default", f"web-{i}")

    return given


def namespace_mix(sb: Sandbox) -> None:
    """Deployment web (2) and an unrelated pod in default, one more pod in kube-system."""
    deployment_of(2)(sb)
    sb.apply(b.pod("other", labels={"app": "other"}))
    sb.apply(b.pod("elsewhere", namespace="kube-system"))
    b.wait_ready(sb, 3)
    b.wait_ready(sb, 1, "kube-system")


def deployment_mid_rollout(sb: Sandbox) -> None:
    """Deployment web (2) whose new template never turns Ready: old and new ReplicaSets both own
    pods, and both lead to the same Deployment."""
    deployment_of(2)(sb)
    sb.registry.patch(
        "deployments",
        "default",
        "web",
        "application/strategic-merge-patch+json",
        {"spec": {"template": {"spec": {"readinessGates": b.never_ready_gate()}}}},
    )
    sb.wait_for(lambda: len(sb.pods("default", "app=web")) == 4, timeout=5, what="4 pods")
    sb.wait_for(
        lambda: all(p["status"].get("phase") == "Running" for p in sb.pods("default", "app=web")),
        timeout=5,
        what="all running",
    )


def disrupted_entry(age: timedelta) -> Callable[[Sandbox], None]:
    """Deployment web (3) and, once the PDB is synced, an entry for web's first pod in
    status.disruptedPods `age` old — as an eviction that has not deleted the pod yet leaves it."""

    def given(sb: Sandbox) -> None:
        deployment_of(3)(sb)

    return given


# --- rows ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    id: str
    upstream: str
    given: Callable[[Sandbox], None]
    pdb: dict[str, Any]
    expect: dict[str, int]
    condition: tuple[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    disrupted_age: timedelta | None = None
    then: Callable[[Sandbox, dict[str, Any]], None] | None = None


def _allowed(n: int) -> tuple[str, str]:
    return ("True", "SufficientPods") if n > 0 else ("False", "InsufficientPods")


def _unmanaged_event(sb: Sandbox, _status: dict[str, Any]) -> None:
    reasons = {
        e["reason"]
        for e in sb.store.all("events")
        if e["involvedObject"].get("kind") == "PodDisruptionBudget"
    }
    assert "UnmanagedPods" in reasons


def _keeps_recent_entry(sb: Sandbox, status: dict[str, Any]) -> None:
    assert list(status["disruptedPods"]) == [_first_pod(sb)]


def _drops_expired_entry(sb: Sandbox, status: dict[str, Any]) -> None:
    assert not status.get("disruptedPods")
    name = _first_pod(sb)
    assert any(
        e["reason"] == "NotDeleted" and e["involvedObject"]["name"] == name for e in sb.store.all("events")
    )


def _first_pod(sb: Sandbox) -> str:
    return min(p["metadata"]["name"] for p in sb.pods("default", "app=web"))


ROWS = [
    Row(
        "maxUnavailable-int-deployment",
        f"getExpectedPodCount: MaxUnavailable -> getExpectedScale via getPodDeployment ({DISRUPTION_GO})",
        deployment_of(3),
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3, "disruptionsAllowed": 1},
        _allowed(1),
    ),
    Row(
        "maxUnavailable-percent-rounds-up",
        f"getExpectedPodCount: GetScaledValueFromIntOrPercent(maxUnavailable, expected, roundUp=true) ({DISRUPTION_GO})",
        deployment_of(3),
        b.pdb("web", max_unavailable="34%"),
        # ceil(0.34 * 3) = 2 may be unavailable, so 1 must stay healthy.
        {"expectedPods": 3, "desiredHealthy": 1, "currentHealthy": 3, "disruptionsAllowed": 2},
        _allowed(2),
    ),
    Row(
        "maxUnavailable-statefulset-scale",
        f"getExpectedScale via getPodStatefulSet ({DISRUPTION_GO})",
        statefulset_of(3),
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3, "disruptionsAllowed": 1},
        _allowed(1),
    ),
    Row(
        "maxUnavailable-expected-is-scale-not-pod-count",
        f"getExpectedScale sums controller scale, not pods: a Pending replica still counts ({DISRUPTION_GO})",
        deployment_with_unschedulable_replica,
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 2, "disruptionsAllowed": 0},
        _allowed(0),
    ),
    Row(
        "maxUnavailable-deployment-counted-once-across-replicasets",
        f"getExpectedScale keys controllerScale by the Deployment's UID (getPodDeployment) ({DISRUPTION_GO})",
        deployment_mid_rollout,
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 2, "desiredHealthy": 1, "currentHealthy": 2, "disruptionsAllowed": 1},
        _allowed(1),
    ),
    Row(
        "minAvailable-int-expected-is-pod-count",
        f"getExpectedPodCount: MinAvailable Int -> expectedCount = len(pods) ({DISRUPTION_GO})",
        bare_pods(3),
        b.pdb("web", min_available=2),
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3, "disruptionsAllowed": 1},
        _allowed(1),
    ),
    Row(
        "minAvailable-percent-rounds-up",
        f"getExpectedPodCount: MinAvailable String -> GetScaledValueFromIntOrPercent(roundUp=true) ({DISRUPTION_GO})",
        deployment_of(3),
        b.pdb("web", min_available="50%"),
        # ceil(0.5 * 3) = 2
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3, "disruptionsAllowed": 1},
        _allowed(1),
    ),
    Row(
        "currentHealthy-excludes-unready-and-terminating",
        f"countHealthyPods: DeletionTimestamp != nil and !IsPodReady are not healthy ({DISRUPTION_GO})",
        bare_pods(3, unready=1, terminating=1),
        b.pdb("web", min_available=1),
        {"expectedPods": 4, "desiredHealthy": 1, "currentHealthy": 2, "disruptionsAllowed": 1},
        _allowed(1),
        timings={"pod_exit_s": 60.0},
    ),
    Row(
        "allowed-is-never-negative",
        f"updatePdbStatus: disruptionsAllowed = max(0, currentHealthy - desiredHealthy) ({DISRUPTION_GO})",
        bare_pods(2),
        b.pdb("web", min_available=5),
        {"expectedPods": 2, "desiredHealthy": 5, "currentHealthy": 2, "disruptionsAllowed": 0},
        _allowed(0),
    ),
    Row(
        "expected-zero-allows-nothing",
        f"updatePdbStatus: expectedCount <= 0 -> disruptionsAllowed 0 (unmanaged pods skipped) ({DISRUPTION_GO})",
        bare_pods(2),
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 0, "desiredHealthy": 0, "currentHealthy": 2, "disruptionsAllowed": 0},
        _allowed(0),
        then=_unmanaged_event,
    ),
    Row(
        "neither-min-nor-max-allows-nothing",
        f"getExpectedPodCount: neither field set -> expectedCount 0, desiredHealthy 0 ({DISRUPTION_GO})",
        deployment_of(2),
        b.pdb("web"),
        {"expectedPods": 0, "desiredHealthy": 0, "currentHealthy": 2, "disruptionsAllowed": 0},
        _allowed(0),
    ),
    Row(
        "empty-selector-matches-whole-namespace",
        "policy/v1 PodDisruptionBudgetSpec.selector: {} selects every pod in the namespace "
        f"(LabelSelectorAsSelector; getPodsForPdb, {DISRUPTION_GO})",
        namespace_mix,
        b.pdb("web", selector={}, min_available=1),
        {"expectedPods": 3, "desiredHealthy": 1, "currentHealthy": 3, "disruptionsAllowed": 2},
        _allowed(2),
    ),
    Row(
        "missing-selector-matches-nothing",
        f"policy/v1: a null selector selects no pods (LabelSelectorAsSelector(nil) = Nothing) ({DISRUPTION_GO})",
        namespace_mix,
        b.pdb("web", selector=None, min_available=1),
        {"expectedPods": 0, "desiredHealthy": 1, "currentHealthy": 0, "disruptionsAllowed": 0},
        _allowed(0),
    ),
    Row(
        "recent-disrupted-pod-not-healthy",
        f"countHealthyPods/buildDisruptedPodMap: an entry younger than DeletionTimeout is kept and not healthy ({DISRUPTION_GO})",
        disrupted_entry(timedelta(seconds=5)),
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 2, "disruptionsAllowed": 0},
        _allowed(0),
        disrupted_age=timedelta(seconds=5),
        then=_keeps_recent_entry,
    ),
    Row(
        "expired-disrupted-pod-dropped",
        f"buildDisruptedPodMap: an entry older than DeletionTimeout (2m) is dropped with a NotDeleted event ({DISRUPTION_GO})",
        disrupted_entry(timedelta(minutes=3)),
        b.pdb("web", max_unavailable=1),
        {"expectedPods": 3, "desiredHealthy": 2, "currentHealthy": 3, "disruptionsAllowed": 1},
        _allowed(1),
        disrupted_age=timedelta(minutes=3),
        then=_drops_expired_entry,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_pdb_status(row: Row, make_sandbox: Callable[..., Sandbox]) -> None:
    # Given the workloads of the row and the PDB
    sb = make_sandbox(**row.timings)
    row.given(sb)
    sb.apply(row.pdb)
    b.pdb_synced(sb, "web")
    if row.disrupted_age is not None:
        # ...and an eviction's record in status.disruptedPods (what checkAndDecrement writes)
        when = timestamp(utcnow() - row.disrupted_age)
        sb.registry.patch(
            "poddisruptionbudgets",
            "default",
            "web",
            "application/merge-patch+json",
            {"status": {"disruptedPods": {_first_pod(sb): when}}},
            subresource="status",
        )

    # When the disruption controller has recomputed the status
    # Then the numbers and the condition are upstream's
    def check() -> None:
        pdb = sb.store.require("poddisruptionbudgets", "default", "web")
        st = pdb["status"]
        got = {k: st.get(k) for k in row.expect}
        assert got == row.expect, f"{row.upstream}: {st}"
        assert st["observedGeneration"] == pdb["metadata"]["generation"]
        cond = next((c for c in st.get("conditions", []) if c["type"] == "DisruptionAllowed"), None)
        assert cond is not None and (cond["status"], cond["reason"]) == row.condition, st
        assert cond["message"] == "" and cond["lastTransitionTime"]

    b.eventually(check, timeout=5)
    if row.then is not None:
        b.eventually(
            lambda: row.then(sb, sb.store.require("poddisruptionbudgets", "default", "web")["status"])
        )  # type: ignore[misc]


def test_disrupted_pod_entry_dropped_once_the_pod_terminates(make_sandbox: Callable[..., Sandbox]) -> None:
    """buildDisruptedPodMap skips pods with a DeletionTimestamp: the eviction's record goes away as
    soon as the pod is terminating, not when it is gone."""
    # Given Deployment web (3) behind maxUnavailable 1, with pods that take long to exit
    sb = make_sandbox(pod_exit_s=60.0)
    deployment_of(3)(sb)
    sb.apply(b.pdb("web", max_unavailable=1))
    b.pdb_synced(sb, "web")
    victim = _first_pod(sb)

    # When one pod is evicted
    v1 = client.CoreV1Api(sb.client())
    v1.create_namespaced_pod_eviction(
        victim, "default", client.V1Eviction(metadata=client.V1ObjectMeta(name=victim, namespace="default"))
    )

    # Then, while it is still Terminating, the PDB no longer lists it in disruptedPods
    def check() -> None:
        st = sb.store.require("poddisruptionbudgets", "default", "web")["status"]
        assert not st.get("disruptedPods"), st
        pod = sb.store.get("pods", "default", victim)
        assert pod is not None and "deletionTimestamp" in pod["metadata"]

    b.eventually(check, timeout=5)


def test_sync_failure_fails_safe(sb: Sandbox) -> None:
    """failSafe: a pod whose controller cannot be found makes the sync fail; disruptionsAllowed is
    0 with DisruptionAllowed False/SyncFailed, and observedGeneration is left behind, so evictions
    get the 429 + Retry-After path (`found no controllers for pod`, getExpectedScale)."""
    # Given a pod that claims a controller no finder knows, under a maxUnavailable PDB
    _nodes(sb, 1)
    orphan = b.pod("web-0", labels={"app": "web"})
    orphan["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "gone", "uid": "0000-gone", "controller": True}
    ]
    sb.apply(orphan)
    b.wait_ready(sb, 1, selector="app=web")

    # When the PDB is created
    sb.apply(b.pdb("web", max_unavailable=1))

    # Then the controller fails safe
    def check() -> None:
        st = sb.store.require("poddisruptionbudgets", "default", "web")["status"]
        cond = next((c for c in st.get("conditions", []) if c["type"] == "DisruptionAllowed"), None)
        assert cond is not None, st
        assert (cond["status"], cond["reason"]) == ("False", "SyncFailed")
        assert cond["message"] == 'found no controllers for pod "web-0"'
        assert st["disruptionsAllowed"] == 0 and st["observedGeneration"] == 0

    b.eventually(check, timeout=5)
    v1 = client.CoreV1Api(sb.client())
    with pytest.raises(client.ApiException) as exc:
        v1.create_namespaced_pod_eviction(
            "web-0",
            "default",
            client.V1Eviction(metadata=client.V1ObjectMeta(name="web-0", namespace="default")),
        )
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "10"
