"""deploy/rbac.yaml: the Kubernetes rights of the access entries' group, minimal and consistent."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.app import project_context
from tests.infra.cdk_support import REPO

RBAC = REPO / "deploy" / "rbac.yaml"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def _rules(docs: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    rules: list[dict[str, Any]] = doc["rules"]
    return rules


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_cluster_role_is_exactly_what_the_runtime_calls(docs: list[dict[str, Any]]) -> None:
    grants = _grants(_rules(docs, "ClusterRole", "eks-rolling"))
    expected = {
        *(("", "nodes", v) for v in ("get", "list", "patch")),  # no watch: nothing watches
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods/eviction", "create"),
        ("policy", "poddisruptionbudgets", "get"),
        ("policy", "poddisruptionbudgets", "list"),
        *(("apps", r, v) for r in ("statefulsets", "deployments", "replicasets") for v in ("get", "list")),
        ("batch", "jobs", "get"),  # a Job-owned pod has recovered once its Job completes
    }
    assert grants == expected


def test_no_wildcards_and_no_cluster_wide_pod_writes_or_secrets(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        for rule in doc.get("rules", []):
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], doc["metadata"]["name"]
            if doc["kind"] == "ClusterRole":
                assert "secrets" not in rule["resources"]
                assert not ({"pods"} & set(rule["resources"]) and {"create", "delete"} & set(rule["verbs"]))
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"] and rule.get("resourceNames"), "Secrets: named, get only"


def test_autoscaler_scale_only_for_cluster_autoscaler(docs: list[dict[str, Any]]) -> None:
    ctx = project_context()
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "eks-rolling-autoscaler"]
    assert role["metadata"]["namespace"] == ctx["autoscaler_namespace"]
    (rule,) = role["rules"]
    assert rule == {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale"],
        "resourceNames": [ctx["autoscaler_deployment"]],
        "verbs": ["get", "patch"],
    }


def test_every_binding_binds_the_access_entry_group(docs: list[dict[str, Any]]) -> None:
    group = project_context()["kubernetes_group"]
    roles = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs if "rules" in d}
    bindings = [d for d in docs if d["kind"].endswith("Binding")]
    assert len(bindings) == len(roles)
    for binding in bindings:
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
        ]
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert (ref["kind"], ref["name"], namespace) in roles


# --- every Kubernetes call of the runtime is allowed -----------------------------------------------
OPS = REPO / "src" / "eks_rolling" / "k8s" / "ops.py"
API_GROUPS = {"core": "", "apps": "apps", "policy": "policy", "batch": "batch"}
VERBS = {
    "list": "list",
    "read": "get",
    "patch": "patch",
    "create": "create",
    "delete": "delete",
    "replace": "update",
}
KINDS = {
    "node": "nodes",
    "pod": "pods",
    "secret": "secrets",
    "stateful_set": "statefulsets",
    "deployment": "deployments",
    "replica_set": "replicasets",
    "pod_disruption_budget": "poddisruptionbudgets",
    "job": "jobs",
}
SUBRESOURCES = ("scale", "status", "eviction")


def required_permission(api: str, method: str) -> tuple[str, str, str]:
    """`apps.patch_namespaced_deployment_scale` -> ("apps", "deployments/scale", "patch")."""
    verb, _, rest = method.partition("_")
    rest = rest.removeprefix("namespaced_").removesuffix("_for_all_namespaces")
    sub = next((x for x in SUBRESOURCES if rest.endswith("_" + x)), None)
    kind = rest.removesuffix("_" + sub) if sub else rest
    assert kind in KINDS and verb in VERBS, f"teach test_rbac about {api}.{method}"
    resource = KINDS[kind] + (f"/{sub}" if sub else "")
    return API_GROUPS[api], resource, VERBS[verb]


def test_every_kubernetes_call_of_the_runtime_is_allowed(docs: list[dict[str, Any]]) -> None:
    # Given every client call in the Kubernetes adapter
    calls = set(re.findall(r"self\.(core|apps|policy|batch)\.([a-z_]+)\(", OPS.read_text()))
    assert len(calls) > 10
    # Then some Role or ClusterRole of deploy/rbac.yaml grants it
    granted = set().union(*(_grants(d["rules"]) for d in docs if "rules" in d))
    missing = sorted({required_permission(api, m) for api, m in calls} - granted)
    assert missing == []


def test_no_configmaps_so_the_admission_parameters_stay_the_operators(docs: list[dict[str, Any]]) -> None:
    # deploy/admission.yaml reads what the group may create from ConfigMap eks-rolling-redis-pods
    for doc in docs:
        for rule in doc.get("rules", []):
            assert "configmaps" not in rule["resources"], doc["metadata"]["name"]
