"""The Kubernetes adapter against the sandbox API: taints keep other taints and survive races,
eviction outcomes are typed and name the PDB, owners resolve to their Deployment."""

from __future__ import annotations

import re
import threading

import pytest

from eks_rolling.errors import MultiplePdbError
from eks_rolling.k8s.ops import KubeOps
from eks_rolling.labels import TAINT_RETIRING
from eks_rolling.planning.snapshot import OwnerRef
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import pod_is_ready
from eks_rolling_sandbox.sandbox import Sandbox


def test_taint_keeps_existing_taints_and_is_idempotent(sb: Sandbox, kube: KubeOps) -> None:
    # Given a node that already carries someone else's taint
    sb.registry.patch(
        "nodes",
        None,
        "node-1",
        "application/merge-patch+json",
        {"spec": {"taints": [{"key": "team/gpu", "value": "yes", "effect": "NoSchedule"}]}},
    )
    # When we taint it twice
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1") is True
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1") is False
    # Then both taints are there, once each
    keys = [t["key"] for t in sb.store.get("nodes", None, "node-1")["spec"]["taints"]]
    assert sorted(keys) == [TAINT_RETIRING, "team/gpu"]
    # ... and removing ours (only with our value) leaves the other alone
    assert kube.remove_taint("node-1", TAINT_RETIRING, "run-other") is False
    assert kube.remove_taint("node-1", TAINT_RETIRING, "run-1") is True
    assert [t["key"] for t in sb.store.get("nodes", None, "node-1")["spec"]["taints"]] == ["team/gpu"]


def test_a_taint_on_the_node_as_read_makes_no_get_unless_it_is_stale(sb: Sandbox, kube: KubeOps) -> None:
    # Given the node as a drain round just read it
    node = kube.get_node("node-1")

    def node_gets(since: float) -> int:
        return sum(
            1 for e in sb.request_log.entries(since) if e.method == "GET" and e.path.endswith("/nodes/node-1")
        )

    # When we taint it with that read: one PATCH, no GET (control: without it, one GET)
    mark = sb.request_log.mark()
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1", node=node) is True
    assert node_gets(mark) == 0
    assert kube.remove_taint("node-1", TAINT_RETIRING) is True
    mark = sb.request_log.mark()
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1") is True
    assert node_gets(mark) == 1
    # ... and a read that another writer has made stale fails its resourceVersion and is read again
    kube.remove_taint("node-1", TAINT_RETIRING)
    stale = kube.get_node("node-1")
    sb.registry.patch(
        "nodes", None, "node-1", "application/merge-patch+json", {"metadata": {"labels": {"team": "x"}}}
    )
    mark = sb.request_log.mark()
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1", node=stale) is True
    assert node_gets(mark) == 1
    assert sb.store.get("nodes", None, "node-1")["metadata"]["labels"]["team"] == "x"
    assert [t["key"] for t in sb.store.get("nodes", None, "node-1")["spec"]["taints"]] == [TAINT_RETIRING]


def test_the_node_list_is_read_from_the_wire_json_without_client_models(sb: Sandbox, kube: KubeOps) -> None:
    # Given a Ready node with a foreign taint, cordoned
    sb.registry.patch(
        "nodes",
        None,
        "node-1",
        "application/merge-patch+json",
        {"spec": {"unschedulable": True, "taints": [{"key": "team/gpu", "effect": "NoSchedule"}]}},
    )
    built = 0
    deserialize = kube.core.api_client.response_deserialize

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal built
        built += 1
        return deserialize(*args, **kwargs)

    kube.core.api_client.response_deserialize = counted  # type: ignore[method-assign]
    # When the nodes are listed
    nodes = kube.nodes_by_instance()
    # Then every field the planner reads comes from the JSON, and no model was built
    one = nodes["i-0001"]
    assert (one.name, one.az, one.ready, one.unschedulable) == ("node-1", "us-east-1a", True, True)
    assert ("team/gpu", "NoSchedule", "") in [(t.key, t.effect, t.value) for t in one.taints]
    assert one.instance_type == "m5.large" and one.allocatable is not None and one.allocatable.cpu_m > 0
    assert sorted(nodes) == ["i-0001", "i-0002"] and nodes["i-0002"].taints == ()
    assert built == 0
    # ... (control: the client's own list builds the models)
    kube.core.list_node()
    assert built == 1


def test_a_taint_added_between_read_and_write_is_not_lost(sb: Sandbox, kube: KubeOps) -> None:
    # Given another controller that adds a taint right after we read the node, once
    real_get = kube.get_node
    raced = threading.Event()

    def racing_get(name: str):  # type: ignore[no-untyped-def]
        node = real_get(name)
        if not raced.is_set():
            raced.set()
            sb.registry.patch(
                "nodes",
                None,
                name,
                "application/strategic-merge-patch+json",
                {"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}},
            )
        return node

    kube.get_node = racing_get  # type: ignore[method-assign]
    # When we taint it
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1")
    # Then our resourceVersion-guarded write got a 409, re-read and kept the racing taint
    keys = sorted(t["key"] for t in sb.store.get("nodes", None, "node-1")["spec"]["taints"])
    assert keys == ["ToBeDeletedByClusterAutoscaler", TAINT_RETIRING]
    conflicts = [e for e in sb.request_log.entries() if e.method == "PATCH" and e.status == 409]
    assert len(conflicts) == 1


def test_a_node_deleted_between_read_and_write_is_gone_not_an_error(sb: Sandbox, kube: KubeOps) -> None:
    # Given a tainted node that is deleted right after we read it (its instance terminated: the
    # node lifecycle controller removes it while Rollback or RestoreCluster untaints)
    assert kube.add_taint("node-1", TAINT_RETIRING, "run-1")
    real_get = kube.get_node

    def racing_get(name: str):  # type: ignore[no-untyped-def]
        node = real_get(name)
        sb.store.delete("nodes", None, name)
        return node

    kube.get_node = racing_get  # type: ignore[method-assign]
    # When we untaint and label it, Then the 404 of the write means "gone", not a failure
    assert kube.remove_taint("node-1", TAINT_RETIRING) is False
    assert [e.status for e in sb.request_log.entries() if e.method == "PATCH"][-1] == 404
    assert kube.set_label("node-2", "example.com/test", "x") is False
    assert [e.status for e in sb.request_log.entries() if e.method == "PATCH"][-1] == 404


def _deploy(sb: Sandbox, name: str, replicas: int, **pdb: object) -> list[dict]:  # type: ignore[type-arg]
    sb.apply(m.deployment(name, "default", replicas))
    if pdb:
        sb.apply(m.pdb(name, "default", selector={"app": name}, **pdb))  # type: ignore[arg-type]
    sb.wait_for(
        lambda: len([p for p in sb.pods("default", f"app={name}") if pod_is_ready(p)]) == replicas,
        what=f"{name} ready",
    )
    if pdb:
        sb.wait_for(
            lambda: (
                sb.store.get("poddisruptionbudgets", "default", name)["status"].get("observedGeneration") == 1
            ),
            what="pdb synced",
        )
    return sb.pods("default", f"app={name}")


def test_eviction_outcomes(sb: Sandbox, kube: KubeOps) -> None:
    # Given two pods behind maxUnavailable 1
    pods = _deploy(sb, "web", 2, max_unavailable=1)
    first, second = (kube.get_pod("default", p["metadata"]["name"]) for p in pods)
    # When both are evicted back to back
    assert kube.evict(first).status == "evicted"
    blocked = kube.evict(second)
    # Then the second is blocked, naming the PDB and its numbers (from the 429's DisruptionBudget cause)
    assert blocked.status == "blocked"
    # (1 or 2 healthy: the evicted pod counts until its deletion lands; the budget is spent either way)
    assert re.search(
        r"blocked by PodDisruptionBudget default/web \([12] healthy, 1 needed, 0 disruptions allowed\)",
        blocked.detail,
    ), blocked.detail
    # ... and a pod that is gone is reported as such
    sb.registry.delete("pods", "default", second.metadata.name, {"gracePeriodSeconds": 0})
    assert kube.evict(second).status == "gone"


def _pdb_lists(sb: Sandbox, since: float) -> list[str]:
    return [
        e.path
        for e in sb.request_log.entries(since)
        if e.method == "GET" and e.path.endswith("/poddisruptionbudgets")
    ]


def test_a_drain_of_many_blocked_pods_reads_the_pdb_from_each_429(sb: Sandbox, kube: KubeOps) -> None:
    # Given six pods behind maxUnavailable 1, among 30 other PDBs of the namespace
    pods = _deploy(sb, "shop", 6, max_unavailable=1)
    for i in range(30):
        sb.apply(m.pdb(f"other-{i}", "default", selector={"app": f"other-{i}"}, max_unavailable=1))
    views = [kube.get_pod("default", p["metadata"]["name"]) for p in pods]
    since = sb.request_log.mark()
    # When all six are evicted back to back: one goes, five are blocked
    outcomes = [kube.evict(v) for v in views]
    assert [o.status for o in outcomes].count("blocked") == 5, outcomes
    assert all(
        re.search(r"blocked by PodDisruptionBudget default/shop \([56] healthy, 5 needed", o.detail)
        for o in outcomes[1:]
    ), outcomes
    # Then the explanations came from the 429s' DisruptionBudget causes: no PDB was listed
    assert _pdb_lists(sb, since) == []


def test_a_429_without_a_budget_cause_is_explained_from_one_listing(sb: Sandbox, kube: KubeOps) -> None:
    # Given six pods behind maxUnavailable 1, and an apiserver (or a proxy) whose 429s carry no
    # details: the PDB must be found by our own lookup
    pods = _deploy(sb, "shop", 6, max_unavailable=1)
    for i in range(30):
        sb.apply(m.pdb(f"other-{i}", "default", selector={"app": f"other-{i}"}, max_unavailable=1))
    bare = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 429,
        "reason": "TooManyRequests",
    }
    sb.faults.add(method="POST", path=r"/pods/[^/]+/eviction$", status=429, body=bare, times=5)
    views = [kube.get_pod("default", p["metadata"]["name"]) for p in pods[1:]]
    since = sb.request_log.mark()
    # When five are evicted back to back and every answer is that bare 429
    outcomes = [kube.evict(v) for v in views]
    assert [o.status for o in outcomes] == ["blocked"] * 5, outcomes
    assert all(
        "blocked by PodDisruptionBudget default/shop (6 healthy, 5 needed" in o.detail for o in outcomes
    )
    # Then the five explanations came from one listing of the namespace's PDBs
    assert len(_pdb_lists(sb, since)) == 1, _pdb_lists(sb, since)


def test_a_pod_under_two_pdbs_is_a_clear_error(sb: Sandbox, kube: KubeOps) -> None:
    pods = _deploy(sb, "api", 2, max_unavailable=1)
    sb.apply(m.pdb("api-too", "default", selector={"app": "api"}, min_available=1))
    with pytest.raises(
        MultiplePdbError, match=r"more than one PodDisruptionBudget \(default/api, default/api-too\)"
    ):
        kube.evict(kube.get_pod("default", pods[0]["metadata"]["name"]))


def test_owners_resolve_to_the_deployment_and_readiness_follows_status(sb: Sandbox, kube: KubeOps) -> None:
    pods = _deploy(sb, "worker", 2)
    owner = kube.owner_of(kube.get_pod("default", pods[0]["metadata"]["name"]))
    assert owner == OwnerRef("Deployment", "default", "worker")
    assert kube.workload_ready(owner) == (True, "Deployment default/worker: 2/2 ready")
    kube.scale_deployment("default", "worker", 3)
    ok, why = kube.workload_ready(owner)
    assert not ok and "/3 ready" in why
    sb.wait_for(lambda: kube.workload_ready(owner)[0], what="worker at 3")
    assert kube.deployment_replicas("default", "worker") == 3
    assert kube.workload_ready(OwnerRef("Deployment", "default", "gone")) == (
        True,
        "Deployment default/gone no longer exists",
    )
