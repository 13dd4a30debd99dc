"""Every kind of response the sandbox emits deserialises through the official client's models.

The v37 models are pydantic with strict types: a missing required field (`conditions[].message` of
a metav1.Condition, `containerStatuses[].imageID`...) or an int sent as a string makes the client
raise. So each case takes the raw HTTP body (`_preload_content=False`, or the error body) of a real
request and feeds it to `ApiClient.deserialize` with the model the client itself would use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client, watch

from eks_rolling_sandbox.api.store import timestamp
from eks_rolling_sandbox.controllers.base import Timings
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b


def _apis(sb: Sandbox) -> SimpleNamespace:
    c = sb.client()
    return SimpleNamespace(
        client=c,
        core=client.CoreV1Api(c),
        apps=client.AppsV1Api(c),
        policy=client.PolicyV1Api(c),
        discovery=client.DiscoveryV1Api(c),
        version=client.VersionApi(c),
        core_group=client.CoreApi(c),
        apis=client.ApisApi(c),
        apps_group=client.AppsApi(c),
    )


def _finish_pod(sb: Sandbox, name: str, phase: str, exit_code: int) -> None:
    """What the kubelet reports for a finished pod, written through PATCH pods/status."""
    pod = sb.store.require("pods", "default", name)
    now = timestamp()
    statuses = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": f"docker.io/library/busybox@sha256:{'0' * 64}",
            "containerID": f"containerd://{'1' * 64}",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": now,
                    "finishedAt": now,
                    "containerID": f"containerd://{'1' * 64}",
                }
            },
            "lastState": {},
        }
        for c in pod["spec"]["containers"]
    ]
    sb.registry.patch(
        "pods",
        "default",
        name,
        "application/merge-patch+json",
        {"status": {"phase": phase, "containerStatuses": statuses}},
        subresource="status",
    )


@pytest.fixture(scope="module")
def scene() -> Iterator[SimpleNamespace]:
    """One cluster with one of everything, built once for the module (reads only from here on)."""
    sb = Sandbox(
        timings=Timings(pod_start_s=0.05, pod_ready_s=0.1, pod_exit_s=120.0), watch_max_s=5.0
    ).start()
    try:
        n1 = b.make_ready_node(sb, 1, b.AZS[0])
        b.make_ready_node(sb, 2, b.AZS[1])
        never_ready = b.add_node(sb, 3, b.AZS[2], ready=False)
        sb.apply(b.deployment("web", 2))
        sb.apply(b.service("web"))
        sb.apply(b.statefulset("db", 1))
        sb.apply(b.daemonset("agent"))
        sb.apply(b.pod("pending", nodeSelector={"no-such-label": "x"}))
        sb.apply(b.pod("bound-not-started", nodeName=never_ready))
        sb.apply(b.pod("unready", labels={"app": "web"}, readinessGates=b.never_ready_gate()))
        sb.apply(b.pod("succeeded", nodeName=n1, restartPolicy="Never"))
        sb.apply(b.pod("failed", nodeName=n1, restartPolicy="Never"))
        b.wait_ready(sb, 2, selector="app=web")
        b.wait_ready(sb, 1, selector="app=db")
        b.wait_ready(sb, 2, "kube-system", "app=agent")
        sb.wait_for(
            lambda: all(
                sb.store.require("pods", "default", n)["status"].get("phase") == "Running"
                for n in ("succeeded", "failed", "unready")
            ),
            timeout=5,
            what="pods running",
        )
        _finish_pod(sb, "succeeded", "Succeeded", 0)
        _finish_pod(sb, "failed", "Failed", 1)
        sb.apply(b.pdb("web", max_unavailable=1, match_labels={"app": "web"}))
        sb.apply(b.pdb("db", min_available=1))
        b.pdb_synced(sb, "web")
        apis = _apis(sb)
        web_pods = sorted(p["metadata"]["name"] for p in b.ready_pods(sb, selector="app=web"))
        apis.core.create_namespaced_pod_eviction(
            web_pods[0], "default", client.V1Eviction(metadata=client.V1ObjectMeta(name=web_pods[0]))
        )
        b.wait_ready(sb, 2, selector="app=web,pod-template-hash")  # the replacement
        sb.settle()
        yield SimpleNamespace(sb=sb, apis=apis, terminating=web_pods[0], running=web_pods[1])
    finally:
        sb.stop()


@dataclass(frozen=True)
class Case:
    id: str
    model: str
    call: Callable[[SimpleNamespace], Any]


def _pod(name: Callable[[SimpleNamespace], str] | str) -> Callable[[SimpleNamespace], Any]:
    def call(s: SimpleNamespace) -> Any:
        n = name(s) if callable(name) else name
        return s.apis.core.read_namespaced_pod(n, "default", _preload_content=False)

    return call


def _pvc_name(s: SimpleNamespace) -> str:
    return str(s.sb.store.all("persistentvolumeclaims")[0]["metadata"]["name"])


def _pv_name(s: SimpleNamespace) -> str:
    return str(s.sb.store.all("persistentvolumes")[0]["metadata"]["name"])


def _rs_name(s: SimpleNamespace) -> str:
    return str(s.sb.store.all("replicasets")[0]["metadata"]["name"])


def _node_name(s: SimpleNamespace) -> str:
    return b.node_name(1)


P = {"_preload_content": False}
CASES = [
    # discovery
    Case("version", "VersionInfo", lambda s: s.apis.version.get_code(**P)),
    Case("api-versions", "V1APIVersions", lambda s: s.apis.core_group.get_api_versions(**P)),
    Case("api-group-list", "V1APIGroupList", lambda s: s.apis.apis.get_api_versions(**P)),
    Case("apps-group", "V1APIGroup", lambda s: s.apis.apps_group.get_api_group(**P)),
    Case("core-v1-resources", "V1APIResourceList", lambda s: s.apis.core.get_api_resources(**P)),
    Case("apps-v1-resources", "V1APIResourceList", lambda s: s.apis.apps.get_api_resources(**P)),
    Case("policy-v1-resources", "V1APIResourceList", lambda s: s.apis.policy.get_api_resources(**P)),
    # nodes
    Case("node-ready", "V1Node", lambda s: s.apis.core.read_node(_node_name(s), **P)),
    Case("node-not-ready", "V1Node", lambda s: s.apis.core.read_node(b.node_name(3), **P)),
    Case("node-list", "V1NodeList", lambda s: s.apis.core.list_node(**P)),
    # pods, one per phase
    Case("pod-pending-unschedulable", "V1Pod", _pod("pending")),
    Case("pod-pending-bound", "V1Pod", _pod("bound-not-started")),
    Case("pod-running-ready", "V1Pod", _pod(lambda s: s.running)),
    Case("pod-running-unready", "V1Pod", _pod("unready")),
    Case("pod-terminating-evicted", "V1Pod", _pod(lambda s: s.terminating)),
    Case("pod-succeeded", "V1Pod", _pod("succeeded")),
    Case("pod-failed", "V1Pod", _pod("failed")),
    Case("pod-statefulset", "V1Pod", _pod("db-0")),
    Case("pod-list", "V1PodList", lambda s: s.apis.core.list_pod_for_all_namespaces(**P)),
    Case("pod-status", "V1Pod", lambda s: s.apis.core.read_namespaced_pod_status("db-0", "default", **P)),
    # workloads
    Case(
        "deployment", "V1Deployment", lambda s: s.apis.apps.read_namespaced_deployment("web", "default", **P)
    ),
    Case(
        "deployment-list", "V1DeploymentList", lambda s: s.apis.apps.list_deployment_for_all_namespaces(**P)
    ),
    Case(
        "deployment-scale",
        "V1Scale",
        lambda s: s.apis.apps.read_namespaced_deployment_scale("web", "default", **P),
    ),
    Case(
        "deployment-scale-patched",
        "V1Scale",
        lambda s: s.apis.apps.patch_namespaced_deployment_scale(
            "web", "default", {"spec": {"replicas": 2}}, **P
        ),
    ),
    Case(
        "statefulset-scale",
        "V1Scale",
        lambda s: s.apis.apps.read_namespaced_stateful_set_scale("db", "default", **P),
    ),
    Case(
        "replicaset",
        "V1ReplicaSet",
        lambda s: s.apis.apps.read_namespaced_replica_set(_rs_name(s), "default", **P),
    ),
    Case(
        "replicaset-list", "V1ReplicaSetList", lambda s: s.apis.apps.list_replica_set_for_all_namespaces(**P)
    ),
    Case(
        "statefulset",
        "V1StatefulSet",
        lambda s: s.apis.apps.read_namespaced_stateful_set("db", "default", **P),
    ),
    Case(
        "statefulset-list",
        "V1StatefulSetList",
        lambda s: s.apis.apps.list_stateful_set_for_all_namespaces(**P),
    ),
    Case(
        "daemonset",
        "V1DaemonSet",
        lambda s: s.apis.apps.read_namespaced_daemon_set("agent", "kube-system", **P),
    ),
    Case("daemonset-list", "V1DaemonSetList", lambda s: s.apis.apps.list_daemon_set_for_all_namespaces(**P)),
    Case(
        "controllerrevision-list",
        "V1ControllerRevisionList",
        lambda s: s.apis.apps.list_controller_revision_for_all_namespaces(**P),
    ),
    # policy
    Case(
        "pdb-after-eviction",
        "V1PodDisruptionBudget",
        lambda s: s.apis.policy.read_namespaced_pod_disruption_budget("web", "default", **P),
    ),
    Case(
        "pdb-status",
        "V1PodDisruptionBudget",
        lambda s: s.apis.policy.read_namespaced_pod_disruption_budget_status("db", "default", **P),
    ),
    Case(
        "pdb-list",
        "V1PodDisruptionBudgetList",
        lambda s: s.apis.policy.list_pod_disruption_budget_for_all_namespaces(**P),
    ),
    # networking and storage
    Case("service", "V1Service", lambda s: s.apis.core.read_namespaced_service("web", "default", **P)),
    Case("service-list", "V1ServiceList", lambda s: s.apis.core.list_service_for_all_namespaces(**P)),
    Case("endpoints", "V1Endpoints", lambda s: s.apis.core.read_namespaced_endpoints("web", "default", **P)),
    Case("endpoints-list", "V1EndpointsList", lambda s: s.apis.core.list_endpoints_for_all_namespaces(**P)),
    Case(
        "endpointslice-list",
        "V1EndpointSliceList",
        lambda s: s.apis.discovery.list_endpoint_slice_for_all_namespaces(**P),
    ),
    Case(
        "pvc",
        "V1PersistentVolumeClaim",
        lambda s: s.apis.core.read_namespaced_persistent_volume_claim(_pvc_name(s), "default", **P),
    ),
    Case(
        "pvc-list",
        "V1PersistentVolumeClaimList",
        lambda s: s.apis.core.list_persistent_volume_claim_for_all_namespaces(**P),
    ),
    Case("pv", "V1PersistentVolume", lambda s: s.apis.core.read_persistent_volume(_pv_name(s), **P)),
    Case("pv-list", "V1PersistentVolumeList", lambda s: s.apis.core.list_persistent_volume(**P)),
    # events and namespaces
    Case("event-list", "CoreV1EventList", lambda s: s.apis.core.list_event_for_all_namespaces(**P)),
    Case(
        "event",
        "CoreV1Event",
        lambda s: s.apis.core.read_namespaced_event(
            s.sb.store.all("events")[0]["metadata"]["name"], "default", **P
        ),
    ),
    Case("namespace", "V1Namespace", lambda s: s.apis.core.read_namespace("kube-system", **P)),
    Case("namespace-list", "V1NamespaceList", lambda s: s.apis.core.list_namespace(**P)),
    # write responses
    Case(
        "configmap-create",
        "V1ConfigMap",
        lambda s: s.apis.core.create_namespaced_config_map(
            "default", {"metadata": {"generateName": "cm-"}, "data": {"k": "v"}}, **P
        ),
    ),
    Case(
        "configmap-delete-status",
        "V1Status",
        lambda s: s.apis.core.delete_namespaced_config_map(
            s.apis.core.create_namespaced_config_map(
                "default", {"metadata": {"generateName": "cm-"}}
            ).metadata.name,
            "default",
            **P,
        ),
    ),
    Case(
        "node-patched",
        "V1Node",
        lambda s: s.apis.core.patch_node(_node_name(s), {"metadata": {"labels": {"roundtrip": "yes"}}}, **P),
    ),
    Case(
        "pod-graceful-delete",
        "V1Pod",
        lambda s: s.apis.core.delete_namespaced_pod(
            s.apis.core.create_namespaced_pod(
                "default", b.pod("to-delete", nodeName=_node_name(s))
            ).metadata.name,
            "default",
            **P,
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_response_deserialises(case: Case, scene: SimpleNamespace) -> None:
    # Given the raw body of a real response
    resp = case.call(scene)
    assert 200 <= resp.status < 300, resp.data
    raw = resp.data.decode()
    # When the client deserialises it into its model
    obj = scene.apis.client.deserialize(raw, case.model, resp.headers.get("Content-Type"))
    # Then it validates, and is the model the client expects
    assert type(obj).__name__ == case.model
    data = json.loads(raw)
    if "kind" in data and case.model.startswith("V1") and not case.model.startswith("V1API"):
        assert data["kind"] in (case.model[2:], "Status", "Scale"), data["kind"]


ERRORS: list[tuple[str, int, Callable[[SimpleNamespace], Any]]] = [
    ("not-found", 404, lambda s: s.apis.core.read_namespaced_pod("nope", "default")),
    ("grouped-not-found", 404, lambda s: s.apis.apps.read_namespaced_deployment("nope", "default")),
    ("already-exists", 409, lambda s: s.apis.core.create_namespace({"metadata": {"name": "default"}})),
    (
        "conflict",
        409,
        lambda s: s.apis.core.patch_node(
            _node_name(s), {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}}
        ),
    ),
    (
        "invalid",
        422,
        lambda s: s.apis.core.create_namespaced_pod(
            "default",
            b.pod(
                "bad",
                spec={
                    "containers": [
                        {"name": "c", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}
                    ]
                },
            ),
        ),
    ),
    ("bad-selector", 400, lambda s: s.apis.core.list_pod_for_all_namespaces(label_selector="a in b c")),
    ("bad-field", 400, lambda s: s.apis.core.list_pod_for_all_namespaces(field_selector="spec.nope=x")),
    (
        "eviction-429",
        429,
        lambda s: s.apis.core.create_namespaced_pod_eviction(
            "db-0", "default", client.V1Eviction(metadata=client.V1ObjectMeta(name="db-0"))
        ),
    ),
    (
        "unsupported-patch",
        415,
        lambda s: s.apis.core.patch_node(
            _node_name(s), {"x": 1}, _content_type="application/apply-patch+yaml"
        ),
    ),
]


@pytest.mark.parametrize("code,call", [(c, f) for _, c, f in ERRORS], ids=[i for i, _, _ in ERRORS])
def test_error_status_deserialises(
    code: int, call: Callable[[SimpleNamespace], Any], scene: SimpleNamespace
) -> None:
    # Given a request the apiserver refuses
    with pytest.raises(client.ApiException) as exc:
        call(scene)
    # Then the code matches and the body is a metav1.Status the client can read
    assert exc.value.status == code, exc.value.body
    status = scene.apis.client.deserialize(exc.value.body, "V1Status", "application/json")
    assert isinstance(status, client.V1Status)
    assert (status.kind, status.status, status.code) == ("Status", "Failure", code)


WATCHED = [
    ("pods", lambda s: s.apis.core.list_pod_for_all_namespaces, client.V1Pod),
    ("nodes", lambda s: s.apis.core.list_node, client.V1Node),
    ("deployments", lambda s: s.apis.apps.list_deployment_for_all_namespaces, client.V1Deployment),
    ("statefulsets", lambda s: s.apis.apps.list_stateful_set_for_all_namespaces, client.V1StatefulSet),
    (
        "pdbs",
        lambda s: s.apis.policy.list_pod_disruption_budget_for_all_namespaces,
        client.V1PodDisruptionBudget,
    ),
    ("events", lambda s: s.apis.core.list_event_for_all_namespaces, client.CoreV1Event),
    ("endpoints", lambda s: s.apis.core.list_endpoints_for_all_namespaces, client.V1Endpoints),
]


@pytest.mark.parametrize("fn,model", [(f, m) for _, f, m in WATCHED], ids=[i for i, _, _ in WATCHED])
def test_watch_events_deserialise(
    fn: Callable[[SimpleNamespace], Any], model: type, scene: SimpleNamespace
) -> None:
    # Given a watch from resourceVersion 0: the current state is replayed as ADDED events
    expected = len(fn(scene)().items)
    assert expected, "the replay is never empty in this scene"
    # When the client's own watch helper reads the replay
    w, events = watch.Watch(), []
    for ev in w.stream(fn(scene), timeout_seconds=5, resource_version="0"):
        events.append(ev)
        if len(events) >= expected:
            w.stop()
    # Then every event's object became the model
    assert len(events) >= expected
    assert {e["type"] for e in events} <= {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"}
    assert all(isinstance(e["object"], model) for e in events)


def test_pdb_mid_eviction_deserialises(make_sandbox: Callable[..., Sandbox]) -> None:
    """The PDB exactly as the eviction handler leaves it (before the controller recomputes it):
    its DisruptionAllowed condition is a metav1.Condition, which must carry `message`."""
    # Given web (2) behind maxUnavailable 1, controllers frozen after setup
    sb = make_sandbox()
    b.make_ready_node(sb, 1)
    sb.apply(b.deployment("web", 2))
    b.wait_ready(sb, 2, selector="app=web")
    sb.apply(b.pdb("web", max_unavailable=1))
    b.pdb_synced(sb, "web")
    b.freeze_controllers(sb)
    apis = _apis(sb)
    # When one pod is evicted (disruptionsAllowed 1 -> 0, condition flipped by the handler)
    victim = b.ready_pods(sb, selector="app=web")[0]["metadata"]["name"]
    apis.core.create_namespaced_pod_eviction(
        victim, "default", client.V1Eviction(metadata=client.V1ObjectMeta(name=victim))
    )
    # Then the PDB read back validates
    resp = apis.policy.read_namespaced_pod_disruption_budget("web", "default", _preload_content=False)
    pdb = apis.client.deserialize(resp.data.decode(), "V1PodDisruptionBudget", "application/json")
    assert pdb.status.disruptions_allowed == 0
    cond = next(c for c in pdb.status.conditions if c.type == "DisruptionAllowed")
    assert (cond.status, cond.reason, cond.message) == ("False", "InsufficientPods", "")
