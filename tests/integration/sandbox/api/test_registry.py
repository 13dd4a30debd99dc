"""Generic API semantics: optimistic concurrency, patch types, selectors, names, watch, pod deletion
and pod validation — each as kube-apiserver does it, driven through the official client."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from eks_rolling_sandbox.api.registry import Registry
from eks_rolling_sandbox.api.server import ApiServer
from eks_rolling_sandbox.api.store import Store
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b

CONFLICT = (
    'Operation cannot be fulfilled on nodes "{}": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


def _status(exc: pytest.ExceptionInfo[client.ApiException]) -> dict[str, Any]:
    return json.loads(exc.value.body)


def _node_taints(core: client.CoreV1Api, name: str) -> list[tuple[str, str | None, str]]:
    return [(t.key, t.value, t.effect) for t in core.read_node(name).spec.taints or []]


# --- optimistic concurrency ------------------------------------------------------------------------
def test_put_with_stale_resource_version_is_409(sb: Sandbox, core: client.CoreV1Api) -> None:
    # Given a node read at some resourceVersion, then changed by someone else
    name = b.make_ready_node(sb, 1)
    stale = core.read_node(name)
    core.patch_node(name, {"metadata": {"labels": {"other": "writer"}}})
    # When the stale copy is PUT back
    stale.metadata.labels["mine"] = "yes"
    with pytest.raises(client.ApiException) as exc:
        core.replace_node(name, stale)
    # Then 409 Conflict (registry/generic/registry/store.go Update), and a fresh copy goes through
    assert exc.value.status == 409
    assert _status(exc)["reason"] == "Conflict"
    assert _status(exc)["message"] == CONFLICT.format(name)
    fresh = core.read_node(name)
    fresh.metadata.labels["mine"] = "yes"
    assert core.replace_node(name, fresh).metadata.labels["mine"] == "yes"


@pytest.mark.parametrize(
    "content_type,patch",
    [
        (
            "application/strategic-merge-patch+json",
            lambda rv: {"metadata": {"resourceVersion": rv, "labels": {"x": "1"}}},
        ),
        (
            "application/merge-patch+json",
            lambda rv: {"metadata": {"resourceVersion": rv, "labels": {"x": "1"}}},
        ),
        (
            "application/json-patch+json",
            lambda rv: [
                {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
                {"op": "add", "path": "/metadata/labels/x", "value": "1"},
            ],
        ),
    ],
    ids=["strategic", "merge", "json"],
)
def test_resource_version_in_patch_body_is_a_precondition(
    sb: Sandbox, core: client.CoreV1Api, content_type: str, patch: Any
) -> None:
    """handlers/patch.go + store.go Update: the patched object keeps the patch's resourceVersion,
    and an object whose resourceVersion differs from the stored one is a conflict."""
    # Given a node whose resourceVersion moved on since it was read
    name = b.make_ready_node(sb, 1)
    old_rv = core.read_node(name).metadata.resource_version
    core.patch_node(name, {"metadata": {"labels": {"bump": "1"}}})
    # When a patch carries the old resourceVersion
    with pytest.raises(client.ApiException) as exc:
        core.patch_node(name, patch(old_rv), _content_type=content_type)
    # Then 409, nothing changed; with the current resourceVersion it applies
    assert exc.value.status == 409, exc.value.body
    assert "x" not in (core.read_node(name).metadata.labels or {})
    cur_rv = core.read_node(name).metadata.resource_version
    assert core.patch_node(name, patch(cur_rv), _content_type=content_type).metadata.labels["x"] == "1"


# --- patch types -------------------------------------------------------------------------------------
def test_strategic_merge_taint_patch_replaces_the_whole_list(sb: Sandbox, core: client.CoreV1Api) -> None:
    """NodeSpec.Taints has no patchStrategy (k8s.io/api core/v1 types.go): the list is replaced."""
    # Given a node with two taints
    name = b.make_ready_node(sb, 1, taints=[b.taint("a", "1"), b.taint("b", "2", "PreferNoSchedule")])
    assert {k for k, _, _ in _node_taints(core, name)} == {"a", "b"}
    # When a dict patch (the client sends strategic merge) names only a third taint
    core.patch_node(name, {"spec": {"taints": [{"key": "c", "value": "3", "effect": "NoSchedule"}]}})
    # Then only that taint is left
    assert _node_taints(core, name) == [("c", "3", "NoSchedule")]
    entry = [e for e in sb.request_log.entries() if e.method == "PATCH"][-1]
    assert entry.content_type == "application/strategic-merge-patch+json"


@pytest.mark.parametrize("guarded", [False, True], ids=["unguarded-loses-taint", "rv-guarded-409"])
def test_taint_read_modify_write_needs_the_resource_version_guard(
    sb: Sandbox, core: client.CoreV1Api, guarded: bool
) -> None:
    """Why the tool must send metadata.resourceVersion with its taint patch: the list is replaced
    wholesale, so a taint another actor (node lifecycle, cluster-autoscaler) adds between our read
    and our write is silently dropped — unless the write is RV-guarded, which turns it into a 409."""
    # Given the tool has read the node's taints
    name = b.make_ready_node(sb, 1)
    node = core.read_node(name)
    desired = [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.spec.taints or []]
    desired.append({"key": "rotation.example.com/retiring", "value": "run-1", "effect": "NoSchedule"})
    # ...and the autoscaler adds its own taint before the tool writes
    core.patch_node(
        name, {"spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]}}
    )
    patch: dict[str, Any] = {"spec": {"taints": desired}}
    if guarded:
        patch["metadata"] = {"resourceVersion": node.metadata.resource_version}
    # When the tool writes its full desired list
    if guarded:
        with pytest.raises(client.ApiException) as exc:
            core.patch_node(name, patch)
        # Then the guarded write is refused, and the autoscaler's taint survives
        assert exc.value.status == 409
        assert [k for k, _, _ in _node_taints(core, name)] == ["ToBeDeletedByClusterAutoscaler"]
    else:
        core.patch_node(name, patch)
        # Then the unguarded write wins, and the autoscaler's taint is lost
        assert [k for k, _, _ in _node_taints(core, name)] == ["rotation.example.com/retiring"]


@pytest.mark.parametrize(
    "content_type",
    ["application/merge-patch+json", "application/strategic-merge-patch+json"],
    ids=["merge", "strategic"],
)
def test_null_in_patch_deletes_a_label(sb: Sandbox, core: client.CoreV1Api, content_type: str) -> None:
    # Given a node with a label
    name = b.make_ready_node(sb, 1, labels={"drop-me": "1", "keep-me": "1"})
    # When a patch sets it to null
    out = core.patch_node(name, {"metadata": {"labels": {"drop-me": None}}}, _content_type=content_type)
    # Then it is gone and the others stay (RFC 7386 / strategicpatch)
    assert "drop-me" not in out.metadata.labels and out.metadata.labels["keep-me"] == "1"


def test_json_patch_test_op_failure_is_422(sb: Sandbox, core: client.CoreV1Api) -> None:
    # Given a node labelled color=blue
    name = b.make_ready_node(sb, 1, labels={"color": "blue"})
    ops = [
        {"op": "test", "path": "/metadata/labels/color", "value": "red"},
        {"op": "add", "path": "/metadata/labels/painted", "value": "yes"},
    ]
    # When a JSON patch tests for red
    with pytest.raises(client.ApiException) as exc:
        core.patch_node(name, ops)
    # Then 422 Invalid (handlers/patch.go: jsonpatch Apply error), nothing applied
    assert exc.value.status == 422
    assert _status(exc)["reason"] == "Invalid"
    assert _status(exc)["message"].startswith(
        "the server rejected our request due to an error in our request"
    )
    assert "painted" not in core.read_node(name).metadata.labels
    # ...and a list body is sent as application/json-patch+json and works when the test holds
    ops[0]["value"] = "blue"
    assert core.patch_node(name, ops).metadata.labels["painted"] == "yes"
    assert sb.request_log.entries()[-1].content_type == "application/json-patch+json"


# --- selectors -----------------------------------------------------------------------------------
LABELLED = {
    "web-prod": {"tier": "web", "env": "prod"},
    "web-dev": {"tier": "web", "env": "dev"},
    "db-prod": {"tier": "db", "env": "prod"},
    "cache": {"tier": "cache"},
    "plain": {},
}


@pytest.mark.parametrize(
    "selector,expected",
    [
        ("tier=web", {"web-prod", "web-dev"}),
        ("tier==web", {"web-prod", "web-dev"}),
        ("tier!=web", {"db-prod", "cache", "plain"}),  # != also matches objects without the key
        ("tier in (web,db)", {"web-prod", "web-dev", "db-prod"}),
        ("tier notin (web)", {"db-prod", "cache", "plain"}),
        ("env", {"web-prod", "web-dev", "db-prod"}),
        ("!env", {"cache", "plain"}),
        ("tier=web,env=prod", {"web-prod"}),
        ("tier in (web, db),env!=dev", {"web-prod", "db-prod"}),
        ("", set(LABELLED)),
    ],
)
def test_label_selectors(sb: Sandbox, core: client.CoreV1Api, selector: str, expected: set[str]) -> None:
    """apimachinery pkg/labels/selector.go operators; comma is AND."""
    # Given config maps with assorted labels
    for name, labels in LABELLED.items():
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})
    # When they are listed with the selector
    got = {i.metadata.name for i in core.list_namespaced_config_map("default", label_selector=selector).items}
    # Then exactly the matching ones come back
    assert got == expected


def test_bad_label_selector_is_400(sb: Sandbox, core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_config_map("default", label_selector="tier in web db")
    assert exc.value.status == 400 and _status(exc)["reason"] == "BadRequest"


def test_field_selectors(sb: Sandbox, core: client.CoreV1Api) -> None:
    """pkg/registry/core/pod/strategy.go ToSelectableFields, and the node conversion funcs."""
    # Given two nodes, a pod on each, one finished pod, one unscheduled pod
    n1, n2 = b.make_ready_node(sb, 1), b.make_ready_node(sb, 2)
    sb.apply(b.pod("on-1", nodeName=n1))
    sb.apply(b.pod("done-1", nodeName=n1))
    sb.apply(b.pod("on-2", nodeName=n2))
    sb.apply(b.pod("nowhere", nodeSelector={"no-such": "label"}))
    b.wait_ready(sb, 3)
    sb.registry.patch(
        "pods",
        "default",
        "done-1",
        "application/merge-patch+json",
        {"status": {"phase": "Succeeded"}},
        subresource="status",
    )

    def names(**kw: Any) -> set[str]:
        return {p.metadata.name for p in core.list_pod_for_all_namespaces(**kw).items}

    # Then the pod selectors filter as upstream (what kubectl drain sends first)
    assert names(field_selector=f"spec.nodeName={n1}") == {"on-1", "done-1"}
    assert names(field_selector=f"spec.nodeName={n1},status.phase!=Succeeded") == {"on-1"}
    assert names(field_selector="spec.nodeName=") == {"nowhere"}
    assert names(field_selector="metadata.name==on-2") == {"on-2"}
    assert names(field_selector="status.phase=Pending") == {"nowhere"}
    # ...nodes select on spec.unschedulable
    core.patch_node(n2, {"spec": {"unschedulable": True}})
    assert [n.metadata.name for n in core.list_node(field_selector="spec.unschedulable=true").items] == [n2]
    # ...and an unknown field is a 400 naming it
    with pytest.raises(client.ApiException) as exc:
        core.list_pod_for_all_namespaces(field_selector="spec.nope=x")
    assert exc.value.status == 400
    assert _status(exc)["message"] == "field label not supported: spec.nope"
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_config_map("default", field_selector="data.k=v")
    assert exc.value.status == 400
    assert (
        _status(exc)["message"]
        == '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


# --- names and namespaces ------------------------------------------------------------------------
def test_generate_name(sb: Sandbox, core: client.CoreV1Api) -> None:
    # When an object is created with generateName only
    made = {
        core.create_namespaced_config_map("default", {"metadata": {"generateName": "tmp-"}}).metadata.name
        for _ in range(5)
    }
    # Then each gets the prefix plus 5 characters from the apiserver's alphabet (names.SimpleNameGenerator)
    assert len(made) == 5
    assert all(re.fullmatch(r"tmp-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in made), made


def test_namespace_must_exist(sb: Sandbox, core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("nope", {"metadata": {"name": "x"}})
    assert exc.value.status == 404
    assert _status(exc)["message"] == 'namespaces "nope" not found'


def test_already_exists_is_409(sb: Sandbox, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    assert exc.value.status == 409
    assert (_status(exc)["reason"], _status(exc)["message"]) == (
        "AlreadyExists",
        'configmaps "x" already exists',
    )


# --- watch ---------------------------------------------------------------------------------------
def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"v": "0"}}


def _events(stream: Iterator[dict[str, Any]], n: int) -> list[tuple[str, str]]:
    return [(e["type"], e["object"].metadata.name) for e in (next(stream) for _ in range(n))]


def test_watch_replays_then_streams_live_events(sb: Sandbox, core: client.CoreV1Api) -> None:
    # Given one config map
    core.create_namespaced_config_map("default", _cm("first"))
    # When a watch starts without a resourceVersion
    w = watch.Watch()
    stream = w.stream(core.list_namespaced_config_map, "default", timeout_seconds=5)
    # Then the current state comes first as ADDED...
    assert _events(stream, 1) == [("ADDED", "first")]
    # ...then live changes, in order
    core.create_namespaced_config_map("default", _cm("second"))
    core.patch_namespaced_config_map("first", "default", {"data": {"v": "1"}})
    core.delete_namespaced_config_map("second", "default")
    assert _events(stream, 3) == [("ADDED", "second"), ("MODIFIED", "first"), ("DELETED", "second")]
    w.stop()


def test_watch_resumes_from_a_resource_version(sb: Sandbox, core: client.CoreV1Api) -> None:
    # Given a list taken at some resourceVersion, and a change after it
    core.create_namespaced_config_map("default", _cm("before"))
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", _cm("after"))
    # When a watch resumes from the list's resourceVersion
    w = watch.Watch()
    stream = w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5)
    # Then only what happened after it is sent (no replay of "before")
    assert _events(stream, 1) == [("ADDED", "after")]
    w.stop()


def test_watch_sends_deleted_when_an_object_stops_matching(sb: Sandbox, core: client.CoreV1Api) -> None:
    """A watch filtered by labels sees an object that stops matching as DELETED, and ADDED when it
    matches again (apiserver watch cache filtering)."""
    core.create_namespaced_config_map("default", _cm("flip", app="x"))
    w = watch.Watch()
    stream = w.stream(core.list_namespaced_config_map, "default", label_selector="app=x", timeout_seconds=5)
    assert _events(stream, 1) == [("ADDED", "flip")]
    core.patch_namespaced_config_map("flip", "default", {"metadata": {"labels": {"app": "y"}}})
    core.patch_namespaced_config_map("flip", "default", {"data": {"v": "invisible"}})
    core.patch_namespaced_config_map("flip", "default", {"metadata": {"labels": {"app": "x"}}})
    assert _events(stream, 2) == [("DELETED", "flip"), ("ADDED", "flip")]
    w.stop()


def test_client_watch_stream_over_nodes(sb: Sandbox, core: client.CoreV1Api) -> None:
    """What the tool does to see a new instance's node turn Ready: watch nodes, typed V1Node."""
    w = watch.Watch()
    stream = w.stream(core.list_node, timeout_seconds=5)
    name = b.add_node(sb, 7, ready=False)
    first = next(stream)
    assert (first["type"], first["object"].metadata.name) == ("ADDED", name)
    assert isinstance(first["object"], client.V1Node)
    b.set_node_ready(sb, name)
    for ev in stream:
        ready = next(c.status for c in ev["object"].status.conditions if c.type == "Ready")
        if ev["type"] == "MODIFIED" and ready == "True":
            break
    w.stop()


@pytest.fixture
def small_history_server() -> Iterator[str]:
    """The real API server over a store that keeps only 3 events of history."""
    store = Store(history=3)
    reg = Registry(store)
    reg.create("namespaces", None, {"metadata": {"name": "default"}})
    server = ApiServer(reg, watch_max_s=5.0)
    server.start()
    yield server.url
    server.stop()


def test_watch_from_an_expired_resource_version_gets_410(small_history_server: str) -> None:
    # Given a resourceVersion that has scrolled out of the history
    url = small_history_server
    cfg = client.Configuration()
    cfg.host = url
    core = client.CoreV1Api(client.ApiClient(cfg))
    old = core.create_namespaced_config_map("default", _cm("a")).metadata.resource_version
    for i in range(5):
        core.patch_namespaced_config_map("a", "default", {"data": {"v": str(i)}})
    # When a raw watch resumes from it
    resp = core.list_namespaced_config_map(
        "default", watch=True, resource_version=old, timeout_seconds=2, _preload_content=False
    )
    lines = [json.loads(x) for x in resp.data.decode().splitlines() if x.strip()]
    # Then the stream is a single ERROR event carrying a 410 Expired Status, then closes
    assert len(lines) == 1 and lines[0]["type"] == "ERROR", lines
    status = lines[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {old} (")
    # ...and the client's watch helper raises ApiException(410), once its own retry fails too
    with pytest.raises(client.ApiException) as exc:
        list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=old))
    assert exc.value.status == 410


# --- pod deletion --------------------------------------------------------------------------------
def _running_pod(sb: Sandbox, name: str = "p") -> str:
    node = b.make_ready_node(sb, 1)
    sb.apply(b.pod(name, nodeName=node))
    b.wait_ready(sb, 1)
    return name


def test_graceful_pod_delete_returns_the_terminating_pod(make_sandbox: Any) -> None:
    """pkg/registry/core/pod/strategy.go CheckGracefulDelete: a bound pod gets a deletionTimestamp
    and stays until the kubelet is done; DELETE answers 200 with the pod."""
    sb = make_sandbox(pod_exit_s=0.5)
    core = client.CoreV1Api(sb.client())
    name = _running_pod(sb)
    uid = core.read_namespaced_pod(name, "default").metadata.uid
    # When the pod is deleted with the default grace
    resp = core.delete_namespaced_pod(name, "default", _preload_content=False)
    # Then 200 with the pod itself, terminating
    assert resp.status == 200
    body = json.loads(resp.data)
    assert body["kind"] == "Pod" and body["metadata"]["uid"] == uid
    assert body["metadata"]["deletionTimestamp"] and body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert core.read_namespaced_pod(name, "default").metadata.deletion_timestamp is not None
    # ...a repeated delete returns it again, and the kubelet removes it
    assert core.delete_namespaced_pod(name, "default").metadata.uid == uid
    sb.wait_for(lambda: sb.store.get("pods", "default", name) is None, timeout=5, what="pod gone")


def test_grace_zero_removes_the_pod_at_once(sb: Sandbox, core: client.CoreV1Api) -> None:
    name = _running_pod(sb)
    core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_pod(name, "default")
    assert exc.value.status == 404


def test_grace_zero_in_the_body(sb: Sandbox, core: client.CoreV1Api) -> None:
    name = _running_pod(sb)
    core.delete_namespaced_pod(name, "default", body=client.V1DeleteOptions(grace_period_seconds=0))
    assert sb.store.get("pods", "default", name) is None


def test_unscheduled_pod_is_deleted_at_once(sb: Sandbox, core: client.CoreV1Api) -> None:
    sb.apply(b.pod("stuck", nodeSelector={"no-such": "label"}))
    core.delete_namespaced_pod("stuck", "default")
    assert sb.store.get("pods", "default", "stuck") is None


def test_delete_precondition_uid_mismatch_is_409(sb: Sandbox, core: client.CoreV1Api) -> None:
    name = _running_pod(sb)
    opts = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    with pytest.raises(client.ApiException) as exc:
        core.delete_namespaced_pod(name, "default", body=opts)
    assert exc.value.status == 409 and _status(exc)["reason"] == "Conflict"
    assert "Precondition failed: UID in precondition: not-the-uid" in _status(exc)["message"]
    assert core.read_namespaced_pod(name, "default").metadata.deletion_timestamp is None


# --- pod validation ------------------------------------------------------------------------------
def test_pod_spec_is_immutable_except_image(sb: Sandbox, core: client.CoreV1Api) -> None:
    """pkg/apis/core/validation ValidatePodUpdate."""
    name = _running_pod(sb)
    out = core.patch_namespaced_pod(
        name, "default", {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}
    )
    assert out.spec.containers[0].image == "nginx:1.28"
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_pod(name, "default", {"spec": {"nodeSelector": {"zone": "elsewhere"}}})
    assert exc.value.status == 422
    body = _status(exc)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        f'Pod "{name}" is invalid: spec: Forbidden: pod updates may not change fields'
    )
    # ...labels are metadata, and may change
    assert (
        core.patch_namespaced_pod(
            name, "default", {"metadata": {"labels": {"role": "temp"}}}
        ).metadata.labels["role"]
        == "temp"
    )


def test_pod_from_statefulset_template_without_claim_volume_is_422(
    sb: Sandbox, core: client.CoreV1Api
) -> None:
    """The StatefulSet controller injects the volumeClaimTemplates' volumes; its template alone does
    not carry them, so a pod built from the bare template fails validation (ValidatePodSpec)."""
    # Given a StatefulSet whose container mounts `data` from a volumeClaimTemplate
    sts = b.statefulset("redis", 1)
    template = sts["spec"]["template"]
    # When a temporary pod is created from its template as is
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_pod(
            "default",
            {"metadata": {"name": "redis-tmp-1", "labels": {"role": "tmp"}}, "spec": template["spec"]},
        )
    # Then 422, naming the mount
    assert exc.value.status == 422
    body = _status(exc)
    assert (
        body["message"]
        == 'Pod "redis-tmp-1" is invalid: spec.containers[0].volumeMounts[0].name: Not found: "data"'
    )
    assert body["details"]["causes"][0]["field"] == "spec.containers[0].volumeMounts[0].name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueNotFound"


# --- content types -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method,content_type,expected",
    [
        # What kubectl's typed clients send: decoded as protobuf, so a JSON body is a 400
        # (tests/sandbox/test_kubectl_protobuf.py has real protobuf bodies)
        ("POST", "application/vnd.kubernetes.protobuf", 400),
        ("POST", "text/plain", 415),
        ("POST", None, 201),  # no Content-Type is JSON (the v37 client's eviction POST)
        ("PATCH", "application/apply-patch+yaml", 415),  # server-side apply is not modelled
    ],
)
def test_request_content_types(sb: Sandbox, method: str, content_type: str | None, expected: int) -> None:
    """handlers/negotiation: an undecodable body is 415 UnsupportedMediaType, not a 400."""
    if method == "PATCH":
        sb.registry.create("configmaps", "default", {"metadata": {"name": "cm"}})
    path = "/api/v1/namespaces/default/configmaps" + ("/cm" if method == "PATCH" else "")
    # Sent through the official client's own connection pool (same TLS and credentials), but
    # with a hand-set Content-Type the typed methods would not send.
    api = sb.client()
    headers = {"Content-Type": content_type} if content_type else {}
    token = api.configuration.get_api_key_with_prefix("authorization")
    if token:
        headers["Authorization"] = token
    resp = api.rest_client.pool_manager.request(
        method,
        api.configuration.host + path,
        body=json.dumps({"metadata": {"name": "made"}}),
        headers=headers,
    )
    assert resp.status == expected, resp.data
    if expected == 415:
        body = json.loads(resp.data)
        assert body["reason"] == "UnsupportedMediaType"
        assert body["message"].startswith(
            "the body of the request was in an unknown format - accepted media types include:"
        )
