"""deploy/admission.yaml: eks-rolling's identity may create its temporary Redis pod and nothing else.

The policy's CEL is evaluated here with cel-python, the way the API server does: matchConditions,
then the variables in order, then every validation (all must be true). The allowed pod is the one
the runtime really builds (`cluster.act.temp_body`) from a Redis Cluster StatefulSet's
template; each refused pod is that pod with one thing an attacker would want.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import celpy
import pytest
import yaml

from eks_rolling.services.redis.cluster import RUN_LABEL, TEMP_FOR_LABEL, TEMP_SUFFIX
from eks_rolling.services.redis.cluster.act import temp_body
from eks_rolling.services.redis.cluster.model import CreateTemp
from eks_rolling.settings import Settings
from eks_rolling_sandbox.redis.manifests import redis_cluster
from infra.app import project_context

REPO = Path(__file__).resolve().parents[2]
DOCS = [d for d in yaml.safe_load_all((REPO / "deploy" / "admission.yaml").read_text()) if d]
(POLICY,) = [d for d in DOCS if d["kind"] == "ValidatingAdmissionPolicy"]
(BINDING,) = [d for d in DOCS if d["kind"] == "ValidatingAdmissionPolicyBinding"]
(EXAMPLE_PARAMS,) = [d for d in DOCS if d["kind"] == "ConfigMap"]
GROUP = project_context()["kubernetes_group"]
# What the sandbox's Redis Cluster StatefulSets use (redis_manifests.redis_cluster).
PARAMS = {
    "data": {"serviceAccountNames": "default", "secretNames": "redis-auth", "images": "redis:7\\.0\\.15"}
}

EVAL_ERROR = " (evaluation error)"
_ENV = celpy.Environment()


def _eval(expression: str, activation: dict[str, Any]) -> Any:
    return _ENV.program(_ENV.compile(expression)).evaluate(activation)


def admit(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    groups: tuple[str, ...] = (GROUP, "system:authenticated"),
) -> list[str]:
    """The messages of the failed validations (empty: admitted). None of them if the policy does
    not match the request."""
    base = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
        "params": celpy.json_to_cel(PARAMS if params is None else params),
        "request": celpy.json_to_cel(
            {
                "operation": operation,
                "userInfo": {"username": "eks-rolling:move_redis_pods", "groups": list(groups)},
            }
        ),
    }
    if not all(_eval(c["expression"], base) for c in POLICY["spec"]["matchConditions"]):
        return []
    variables: dict[str, Any] = {}
    for var in POLICY["spec"]["variables"]:
        variables[var["name"]] = _eval(
            var["expression"], {**base, "variables": celpy.celtypes.MapType(variables)}
        )
    activation = {**base, "variables": celpy.celtypes.MapType(variables)}
    failed = []
    for rule in POLICY["spec"]["validations"]:
        try:
            result = _eval(rule["expression"], activation)
        except celpy.CELEvalError:  # the API server counts an evaluation error as a failure
            failed.append(rule["message"] + EVAL_ERROR)
            continue
        assert isinstance(result, celpy.celtypes.BoolType), (rule["expression"], result)
        if not result:
            failed.append(rule["message"])
    return failed


def temp_pod() -> dict[str, Any]:
    """The temporary pod exactly as the Redis Cluster procedure creates it."""
    manifests = redis_cluster(password_secret="redis-auth")
    sts = next(m for m in manifests if m["kind"] == "StatefulSet")
    ns, pod = sts["metadata"]["namespace"], f"{sts['metadata']['name']}-0"
    env = SimpleNamespace(
        settings=Settings(cluster_name="prod-eks"),
        ctx=SimpleNamespace(taint_value="run-1a2b3c"),
        group=SimpleNamespace(namespace=ns, name="cache"),
    )
    create = CreateTemp(
        pod=pod,
        statefulset=sts["metadata"]["name"],
        temp=pod + TEMP_SUFFIX,
        node_id="f" * 40,
        slots=((0, 5460),),
        zone="us-east-1a",
    )
    body: dict[str, Any] = temp_body(env, create, copy.deepcopy(sts["spec"]["template"]))  # type: ignore[arg-type]
    return body


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    pod = temp_pod()
    change(pod)
    return pod


def test_the_temporary_pod_the_runtime_builds_is_admitted() -> None:
    pod = temp_pod()
    assert pod["metadata"]["name"].endswith(TEMP_SUFFIX)
    assert {RUN_LABEL, TEMP_FOR_LABEL} <= set(pod["metadata"]["labels"])
    assert any(
        e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "redis-auth"
        for c in pod["spec"]["containers"]
        for e in c.get("env", [])
    )  # the Secret reference is really there, and allowed
    assert admit(pod) == []


def _env_secret(pod: dict[str, Any], name: str) -> None:
    pod["spec"]["containers"][0]["env"].append(
        {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": name, "key": "token"}}}
    )


REFUSED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "any pod name": (lambda p: p["metadata"].update(name="shell"), "temporary Redis Cluster pods"),
    "no run label": (lambda p: p["metadata"]["labels"].pop(RUN_LABEL), "run and redis-temp-for labels"),
    "host network": (lambda p: p["spec"].update(hostNetwork=True), "host network"),
    "host PID": (lambda p: p["spec"].update(hostPID=True), "host network"),
    "hostPath": (
        lambda p: p["spec"]["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
        "hostPath",
    ),
    "privileged": (
        lambda p: p["spec"]["containers"][0].update(securityContext={"privileged": True}),
        "privileged",
    ),
    "another ServiceAccount": (lambda p: p["spec"].update(serviceAccountName="admin"), "ServiceAccount"),
    "a Secret volume": (
        lambda p: p["spec"]["volumes"].append({"name": "s", "secret": {"secretName": "db-credentials"}}),
        "Secrets",
    ),
    "a projected Secret": (
        lambda p: p["spec"]["volumes"].append(
            {"name": "p", "projected": {"sources": [{"secret": {"name": "db-credentials"}}]}}
        ),
        "Secrets",
    ),
    "a Secret in env": (lambda p: _env_secret(p, "db-credentials"), "Secrets"),
    "a Secret in envFrom": (
        lambda p: p["spec"]["containers"][0].update(envFrom=[{"secretRef": {"name": "db-credentials"}}]),
        "Secrets",
    ),
    "a name that only starts like an allowed Secret": (
        lambda p: _env_secret(p, "redis-auth-admin"),
        "Secrets",
    ),
    "another image": (lambda p: p["spec"]["containers"][0].update(image="alpine:3.20"), "images"),
    "an init container's image": (
        lambda p: p["spec"].update(initContainers=[{"name": "x", "image": "evil/miner:latest"}]),
        "images",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_any_other_pod_is_refused_naming_why(case: str) -> None:
    change, reason = REFUSED[case]
    failed = admit(mutated(change))
    assert failed and any(reason in m for m in failed), failed
    assert not any(m.endswith(EVAL_ERROR) for m in failed), failed  # refused by the rule, not by accident


def test_a_namespace_without_its_configmap_values_refuses_every_pod() -> None:
    failed = admit(temp_pod(), params={"data": {"images": ".*"}})
    assert any("ConfigMap eks-rolling-redis-pods" in m for m in failed)
    # and the binding takes the ConfigMap from the pod's namespace, refusing when it is missing
    ref = BINDING["spec"]["paramRef"]
    assert ref == {"name": EXAMPLE_PARAMS["metadata"]["name"], "parameterNotFoundAction": "Deny"}
    assert BINDING["spec"]["validationActions"] == ["Deny"]
    assert POLICY["spec"]["failurePolicy"] == "Fail"


def test_updates_may_change_annotations_only() -> None:
    old = temp_pod()
    noted = mutated(lambda p: p["metadata"]["annotations"].update({"eks-rolling.io/replica-priority": "100"}))
    assert admit(noted, operation="UPDATE", old=old) == []
    for change in (
        lambda p: p["spec"]["containers"][0].update(image="alpine:3.20"),
        lambda p: p["metadata"]["labels"].update(app="not-redis"),
    ):
        assert admit(mutated(change), operation="UPDATE", old=old) == [
            "eks-rolling may change a pod's annotations only"
        ]


def test_other_identities_are_not_this_policys_business() -> None:
    assert admit(mutated(lambda p: p["spec"].update(hostNetwork=True)), groups=("system:masters",)) == []


def test_the_example_configmap_admits_a_typical_chart_pod() -> None:
    pod = mutated(lambda p: p["spec"].update(serviceAccountName="redis"))
    pod["spec"]["containers"][0]["image"] = "redis:7.2.5"
    pod["spec"]["containers"].append({"name": "metrics", "image": "docker.io/bitnami/redis-exporter:1.62.0"})
    assert admit(pod, params={"data": EXAMPLE_PARAMS["data"]}) == []
