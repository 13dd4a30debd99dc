"""The sandbox's protobuf codec (eks_rolling_sandbox/k8s_proto.py, table from the upstream .proto
files and Go struct tags): every object the sandbox serves survives JSON -> protobuf -> JSON, the
Go encoding/json rules (omitempty, pointers, inlined structs, []byte as base64) hold, and a watch
in protobuf is length-framed WatchEvents whose objects are full protobuf bodies."""

from __future__ import annotations

import struct
import threading
import urllib.request
from typing import Any

import pytest

from eks_rolling_sandbox.api import proto as k8s_proto
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b


def _meaningful(v: Any) -> Any:
    """What survives any encoding: empty maps/lists and unset values dropped on both sides."""
    if isinstance(v, dict):
        out = {k: _meaningful(x) for k, x in v.items() if x not in (None, [], {})}
        return {k: x for k, x in out.items() if x not in ([], {})} if out else {}
    if isinstance(v, list):
        return [_meaningful(x) for x in v]
    return v


def _zero_scalars_dropped(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _zero_scalars_dropped(x) for k, x in v.items() if x not in (0, "")}
    if isinstance(v, list):
        return [_zero_scalars_dropped(x) for x in v]
    return v


def test_every_served_object_survives_a_protobuf_round_trip(sb: Sandbox) -> None:
    # Given nodes, workloads of every kind, their pods, PDBs, a Service, a Secret and a ConfigMap
    b.make_ready_node(sb, 1)
    b.make_ready_node(sb, 2, b.AZS[1])
    sb.apply(b.deployment("web", 2))
    sb.apply(b.statefulset("redis", 1))
    sb.apply(b.daemonset("agent"))
    sb.apply(b.pdb("web", max_unavailable=1))
    sb.apply(b.service("web"))
    sb.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "AAEC/w=="}})
    sb.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
    b.wait_ready(sb, 2, selector="app=web")
    b.wait_ready(sb, 1, selector="app=redis")
    b.pdb_synced(sb, "web")
    kinds: set[str] = set()
    for plural in (
        "nodes",
        "pods",
        "namespaces",
        "services",
        "endpoints",
        "persistentvolumeclaims",
        "events",
        "secrets",
        "configmaps",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "controllerrevisions",
        "poddisruptionbudgets",
        "endpointslices",
    ):
        for obj in sb.store.all(plural):
            # When it is encoded as the server answers a protobuf client, and decoded again
            body = k8s_proto.encode(obj)
            assert body is not None and body.startswith(k8s_proto.MAGIC), plural
            back = k8s_proto.decode(body)
            # Then nothing but empty and zero (omitempty) values is lost
            assert _zero_scalars_dropped(_meaningful(back)) == _zero_scalars_dropped(_meaningful(obj)), plural
            kinds.add(obj["kind"])
    assert kinds >= {"Node", "Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Secret"}
    assert kinds >= {"PodDisruptionBudget", "Service", "Endpoints", "EndpointSlice", "PersistentVolumeClaim"}


def test_go_json_rules_pointer_omitempty_inline_bytes() -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "creationTimestamp": "2026-12-06T10:11:12Z", "labels": {"a": ""}},
        "spec": {
            "replicas": 0,  # *int32: an explicit zero
            "minReadySeconds": 0,  # int32 omitempty: zero means unset
            "selector": {"matchLabels": {"a": ""}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "ports": [{"containerPort": 0}],  # no omitempty: stays
                            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
                        }
                    ],
                    "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}],
                    "securityContext": {"runAsUser": -1},
                },
            },
        },
    }
    back = k8s_proto.decode(k8s_proto.encode(deploy) or b"")
    spec = back["spec"]
    assert spec["replicas"] == 0 and "minReadySeconds" not in spec
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    assert c["ports"] == [{"containerPort": 0}]
    assert c["resources"]["requests"] == {"cpu": "250m", "memory": "64Mi"}
    # ProbeHandler and VolumeSource are embedded structs: inlined in JSON, nested on the wire
    assert c["readinessProbe"] == {"tcpSocket": {"port": "http"}, "periodSeconds": 5}
    assert pod["volumes"] == [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]
    assert pod["securityContext"] == {"runAsUser": -1}
    assert back["metadata"]["creationTimestamp"] == "2026-12-06T10:11:12Z"
    assert back["metadata"]["labels"] == {"a": ""}
    # []byte is base64 in JSON and raw on the wire
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "AAEC/w=="}}
    body = k8s_proto.encode(secret) or b""
    assert b"\x00\x01\x02\xff" in body
    assert k8s_proto.decode(body)["data"] == {"k": "AAEC/w=="}
    # MicroTime keeps microseconds (Events' eventTime)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "eventTime": "2026-01-02T03:04:05.123456Z",
    }
    assert k8s_proto.decode(k8s_proto.encode(event) or b"")["eventTime"] == "2026-01-02T03:04:05.123456Z"


def test_bodies_that_are_not_kubernetes_protobuf_are_refused() -> None:
    with pytest.raises(k8s_proto.ProtoError, match="magic"):
        k8s_proto.decode(b'{"kind":"Pod"}')
    unknown = k8s_proto.MAGIC + b"\x0a\x10\x0a\x02v1\x12\x0aNoSuchKind"
    with pytest.raises(k8s_proto.ProtoError, match="NoSuchKind"):
        k8s_proto.decode(unknown)
    # A kind without a protobuf form (a Table) is answered in JSON instead
    assert k8s_proto.encode({"apiVersion": "meta.k8s.io/v1", "kind": "Table", "rows": []}) is None


def test_watch_in_protobuf_is_length_framed_watch_events(sb: Sandbox) -> None:
    req = urllib.request.Request(
        f"{sb.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=2",
        headers={"Accept": f"{k8s_proto.MEDIA_TYPE};stream=watch, application/json"},
    )
    frames: list[bytes] = []
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == k8s_proto.WATCH_MEDIA_TYPE
        threading.Timer(0.3, lambda: sb.apply(_cm())).start()
        data = resp.read()
    while data:
        (n,) = struct.unpack(">I", data[:4])
        frames.append(data[4 : 4 + n])
        data = data[4 + n :]
    assert frames, "no watch event"
    # WatchEvent{type=1: "ADDED", object=2: RawExtension{raw=1: a full protobuf body}}
    ev = frames[0]
    assert ev.startswith(b"\x0a\x05ADDED\x12")
    raw_ext = ev[len(b"\x0a\x05ADDED\x12") :]
    assert k8s_proto.MAGIC in raw_ext[:8]
    obj = k8s_proto.decode(raw_ext[raw_ext.index(k8s_proto.MAGIC) :])
    assert obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "c" and obj["data"] == {"k": "v"}


def _cm() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}


def test_the_field_table_covers_every_served_kind() -> None:
    """A resource added to resources.py without regenerating the table would answer protobuf
    clients in JSON and refuse their bodies: tools/gen_proto_fields.py ROOTS must list it."""
    from eks_rolling_sandbox.api.resources import RESOURCES

    for r in RESOURCES:
        assert k8s_proto.message_for(r.api_version, r.kind), r.kind
        assert k8s_proto.message_for(r.api_version, r.list_kind), r.list_kind
    for api_version, kind in (("policy/v1", "Eviction"), ("autoscaling/v1", "Scale"), ("v1", "Status")):
        assert k8s_proto.message_for(api_version, kind), kind
