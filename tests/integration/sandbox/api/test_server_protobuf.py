"""Real kubectl 1.32 against the sandbox where its typed clients speak protobuf
(`application/vnd.kubernetes.protobuf`): `create deployment` and `create poddisruptionbudget`
send protobuf bodies and read protobuf answers, `drain` lists and polls pods in protobuf. Before
the sandbox had a protobuf codec these commands failed with 415 "the body of the request was in
an unknown format"."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from eks_rolling_sandbox.api import proto as k8s_proto
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed"),
]
PROTO = k8s_proto.MEDIA_TYPE


class Kubectl:
    def __init__(self, sb: Sandbox, tmp_path: Path) -> None:
        self.kubeconfig = sb.kubeconfig(tmp_path / "kc")

    def __call__(self, *args: str, ok: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        out = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if ok:
            assert out.returncode == 0, (
                f"kubectl {' '.join(args)} rc={out.returncode}\n{out.stdout}\n{out.stderr}"
            )
        return out


@pytest.fixture
def kubectl(sb: Sandbox, tmp_path: Path) -> Kubectl:
    return Kubectl(sb, tmp_path)


def _posts(sb: Sandbox, mark: int, suffix: str) -> list[tuple[str | None, int, str]]:
    return [
        (e.content_type, e.status, e.response_type)
        for e in sb.request_log.entries(mark)
        if e.method == "POST" and e.path.endswith(suffix)
    ]


def test_create_deployment_sends_and_reads_protobuf(sb: Sandbox, kubectl: Kubectl) -> None:
    b.make_ready_node(sb, 1)
    mark = sb.request_log.mark()
    # When kubectl creates a Deployment with its typed generator and prints the server's answer
    out = kubectl(
        "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80", "-o", "json"
    )
    # Then the body went in protobuf and the answer came back in protobuf, 201
    assert _posts(sb, mark, "/deployments") == [(PROTO, 201, PROTO)]
    # ...the stored object is what kubectl meant, with no zero-valued non-pointer fields
    # (omitempty) that the Go encoder puts on the wire
    stored = sb.store.require("deployments", "default", "web")
    assert stored["spec"]["replicas"] == 2
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27" and container["ports"] == [{"containerPort": 80}]
    assert "generateName" not in stored["metadata"] and "minReadySeconds" not in stored["spec"]
    assert "paused" not in stored["spec"]
    # ...and kubectl decoded our protobuf answer into the same object (its -o json is from it)
    answer = json.loads(out.stdout)
    assert answer["metadata"]["uid"] == stored["metadata"]["uid"]
    assert answer["metadata"]["creationTimestamp"] == stored["metadata"]["creationTimestamp"]
    assert answer["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert answer["spec"]["replicas"] == 2
    # ...and the Deployment rolls out
    out = kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert 'deployment "web" successfully rolled out' in out.stdout


def test_create_deployment_with_zero_replicas_keeps_the_explicit_zero(sb: Sandbox, kubectl: Kubectl) -> None:
    """spec.replicas is a *int32: a zero on the wire is an explicit 0, not 'unset' (default 1)."""
    kubectl("create", "deployment", "idle", "--image=nginx", "--replicas=0")
    assert sb.store.require("deployments", "default", "idle")["spec"]["replicas"] == 0


def test_create_pdb_int_and_percent_then_scale_and_get_yaml(sb: Sandbox, kubectl: Kubectl) -> None:
    b.make_ready_node(sb, 1)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    mark = sb.request_log.mark()
    # When kubectl creates two PDBs: minAvailable as an int, maxUnavailable as a percentage
    out = kubectl("create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=1")
    assert "poddisruptionbudget.policy/web created" in out.stdout
    kubectl("create", "pdb", "web-pct", "--selector=app=web", "--max-unavailable=50%")
    # Then both went over protobuf and IntOrString kept its type
    assert _posts(sb, mark, "/poddisruptionbudgets") == [(PROTO, 201, PROTO)] * 2
    assert sb.store.require("poddisruptionbudgets", "default", "web")["spec"]["minAvailable"] == 1
    assert sb.store.require("poddisruptionbudgets", "default", "web-pct")["spec"]["maxUnavailable"] == "50%"
    # When the Deployment is scaled and read back as YAML
    kubectl("scale", "deployment", "web", "--replicas=3")
    kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    b.pdb_synced(sb, "web")
    out = kubectl("get", "pdb", "web", "-o", "yaml")
    # Then the PDB's status shows the three healthy pods
    assert "minAvailable: 1" in out.stdout and "currentHealthy: 3" in out.stdout, out.stdout
    assert "disruptionsAllowed: 2" in out.stdout, out.stdout


def test_drain_reads_pods_in_protobuf(sb: Sandbox, kubectl: Kubectl) -> None:
    old = b.make_ready_node(sb, 1)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    kubectl("create", "pdb", "web", "--selector=app=web", "--max-unavailable=1")
    b.wait_ready(sb, 2)
    b.pdb_synced(sb, "web")
    b.make_ready_node(sb, 2)
    mark = sb.request_log.mark()
    # When the old node is drained
    out = kubectl("drain", old, "--ignore-daemonsets", "--timeout=60s", timeout=90)
    # Then it finished, having listed the pods and waited on each in protobuf (a 404 Status at the end)
    assert f"node/{old} drained" in out.stdout and out.stdout.count(" evicted") == 2, out.stdout + out.stderr
    entries = sb.request_log.entries(mark)
    lists = [e for e in entries if e.method == "GET" and e.path == "/api/v1/pods"]
    assert lists and all(e.response_type == PROTO for e in lists)
    waits = [
        e for e in entries if e.method == "GET" and e.path.startswith("/api/v1/namespaces/default/pods/")
    ]
    assert {e.response_type for e in waits} == {PROTO} and 404 in {e.status for e in waits}


def test_a_bad_protobuf_body_is_refused_and_nothing_is_created(sb: Sandbox) -> None:
    import urllib.error
    import urllib.request

    before = len(sb.store.all("configmaps"))
    body = k8s_proto.MAGIC + b"\x0a\x05\x0a\x02v1"  # a TypeMeta cut short
    req = urllib.request.Request(
        f"{sb.url}/api/v1/namespaces/default/configmaps",
        data=body,
        method="POST",
        headers={"Content-Type": PROTO, "Accept": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400
    status = json.loads(err.value.read())
    assert status["reason"] == "BadRequest" and "unrecognized" in status["message"], status
    assert len(sb.store.all("configmaps")) == before


def test_drain_with_disable_eviction_deletes_with_protobuf_delete_options(
    sb: Sandbox, kubectl: Kubectl
) -> None:
    """`--disable-eviction` deletes pods through the typed client: DeleteOptions in protobuf."""
    old = b.make_ready_node(sb, 1)
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    b.wait_ready(sb, 2)
    b.make_ready_node(sb, 2)
    mark = sb.request_log.mark()
    out = kubectl("drain", old, "--disable-eviction", "--grace-period=1", "--timeout=60s", timeout=90)
    assert f"node/{old} drained" in out.stdout and out.stdout.count(" deleted") == 2, out.stdout + out.stderr
    deletes = [e for e in sb.request_log.entries(mark) if e.method == "DELETE"]
    assert [(e.content_type, e.status) for e in deletes] == [(PROTO, 200)] * 2
    assert {p["spec"]["nodeName"] for p in b.wait_ready(sb, 2)} != {old}
