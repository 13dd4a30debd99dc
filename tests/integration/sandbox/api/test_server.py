"""Real kubectl (the Go reference client) against the sandbox: discovery, server-side printing,
patches, OpenAPI-backed apply, and `kubectl drain` — whose filters, 429 retry loop and UID-aware
wait-for-delete are the behaviour the tool reimplements (staging/src/k8s.io/kubectl/pkg/drain)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed"),
]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(sb: Sandbox, tmp_path: Path) -> Kubectl:
    kubeconfig = sb.kubeconfig(tmp_path / "kc")

    def run(
        *args: str, timeout: float = 30, stdin: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        out = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        if ok:
            assert out.returncode == 0, _explain(out)
        return out

    return run


def _explain(out: subprocess.CompletedProcess[str]) -> str:
    return f"kubectl {' '.join(out.args[3:])} -> rc={out.returncode}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def test_get_nodes_and_pods_in_all_namespaces(sb: Sandbox, kubectl: Kubectl) -> None:
    """Discovery (legacy documents after the aggregated-discovery Accept falls back) and
    server-side Table printing (pkg/printers/internalversion/printers.go columns)."""
    # Given two Ready nodes, a Deployment and a DaemonSet
    n1, n2 = b.make_ready_node(sb, 1), b.make_ready_node(sb, 2, b.AZS[1])
    sb.apply(b.deployment("web", 2))
    sb.apply(b.daemonset("agent"))
    pods = b.wait_ready(sb, 2) + b.wait_ready(sb, 2, "kube-system")
    # When kubectl lists nodes and pods
    out = kubectl("get", "nodes,pods", "-A")
    # Then both tables print, with their columns and every object
    rows, text = _rows(out.stdout), out.stdout
    assert ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] in rows, _explain(out)
    assert ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] in rows, _explain(out)
    for n in (n1, n2):
        assert any(r[:2] == [f"node/{n}", "Ready"] for r in rows), _explain(out)
    for p in pods:
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        assert any(r[:5] == [ns, f"pod/{name}", "1/1", "Running", "0"] for r in rows), text
    assert out.stderr == "", _explain(out)
    # ...and the wide node view carries the InternalIP
    wide = kubectl("get", "node", n1, "-o", "wide")
    assert "127.1.0.1" in wide.stdout and "INTERNAL-IP" in wide.stdout, _explain(wide)


def test_taint_and_untaint(sb: Sandbox, kubectl: Kubectl) -> None:
    node = b.make_ready_node(sb, 1)
    # When kubectl taints the node (a strategic-merge patch carrying the whole taints list)
    out = kubectl("taint", "node", node, "rotation.example.com/retiring=run-1:NoSchedule")
    assert f"node/{node} tainted" in out.stdout, _explain(out)
    taints = sb.store.require("nodes", None, node)["spec"]["taints"]
    assert [(t["key"], t.get("value"), t["effect"]) for t in taints] == [
        ("rotation.example.com/retiring", "run-1", "NoSchedule")
    ]
    # ...then removes it by key
    out = kubectl("taint", "node", node, "rotation.example.com/retiring-")
    assert f"node/{node} untainted" in out.stdout, _explain(out)
    assert not sb.store.require("nodes", None, node)["spec"].get("taints")
    # ...and a taint with an invalid effect, patched in raw, is refused by the server's validation
    bad = kubectl(
        "patch",
        "node",
        node,
        "--type=merge",
        "-p",
        '{"spec":{"taints":[{"key":"k","effect":"Sometimes"}]}}',
        ok=False,
    )
    assert bad.returncode != 0, _explain(bad)
    assert f'Node "{node}" is invalid: spec.taints[0].effect: Unsupported value: "Sometimes"' in bad.stderr, (
        _explain(bad)
    )


def test_get_nodes_watch_prints_each_change_as_a_row(sb: Sandbox, tmp_path: Path, kubectl: Kubectl) -> None:
    """`kubectl get nodes -w` asks for Tables on the watch too: each change is a row with the
    node printer's columns (STATUS included), not kubectl's NAME/AGE fallback for raw objects."""
    node = b.make_ready_node(sb, 1)
    assert KUBECTL is not None
    watch = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(sb.kubeconfig(tmp_path / "kc-watch")), "get", "nodes", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert watch.stdout is not None
        lines = [watch.stdout.readline(), watch.stdout.readline()]  # header and the listed node
        # When the node is cordoned while the watch runs
        kubectl("cordon", node)
        lines.append(watch.stdout.readline())
    finally:
        watch.kill()
        watch.wait()
    # Then the change arrives as a row under the same header, with the node's new status
    assert lines[0].split()[:2] == ["NAME", "STATUS"], lines
    assert lines[2].split()[:2] == [node, "Ready,SchedulingDisabled"], lines


def test_apply_scale_and_rollout_status(sb: Sandbox, kubectl: Kubectl) -> None:
    """`kubectl apply` with its default --validate=strict needs OpenAPI v3 (QueryParamVerifierV3);
    re-apply is a three-way strategic merge; scale goes through the scale subresource."""
    b.make_ready_node(sb, 1)
    manifest = b.deployment("web", 1)
    out = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert "deployment.apps/web created" in out.stdout, _explain(out)
    manifest["spec"]["replicas"] = 2
    out = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert "deployment.apps/web configured" in out.stdout, _explain(out)
    out = kubectl("rollout", "status", "deployment/web", "--timeout=20s", timeout=30)
    assert 'deployment "web" successfully rolled out' in out.stdout, _explain(out)
    kubectl("scale", "deployment/web", "--replicas=3")
    out = kubectl("rollout", "status", "deployment/web", "--timeout=20s", timeout=30)
    assert len(b.ready_pods(sb, selector="app=web")) == 3, _explain(out)


def _drain(kubectl: Kubectl, node: str, *extra: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return kubectl(
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=60s",
        *extra,
        timeout=90,
        ok=ok,
    )


def test_drain_waits_out_the_pdb_then_succeeds(sb: Sandbox, kubectl: Kubectl) -> None:
    """evictPods: a 429 is printed and retried after 5 s; the drain ends once the first
    replacement is Ready elsewhere and the PDB allows the second eviction."""
    # Given web (2 pods, emptyDir scratch) behind maxUnavailable 1, and a DaemonSet, on the old node
    old = b.make_ready_node(sb, 1)
    scratch = b.pod_spec(volumes=[{"name": "tmp", "emptyDir": {}}])
    scratch["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    sb.apply(b.deployment("web", 2, template_spec=scratch))
    sb.apply(b.daemonset("agent"))
    sb.apply(b.pdb("web", max_unavailable=1))
    b.wait_ready(sb, 2)
    b.pdb_synced(sb, "web")
    # ...and a new node to move to
    new = b.make_ready_node(sb, 2)
    # When the old node is drained
    out = _drain(kubectl, old)
    # Then kubectl hit the budget, retried, and finished
    assert f"node/{old} cordoned" in out.stdout, _explain(out)
    assert "Cannot evict pod as it would violate the pod's disruption budget." in out.stderr, _explain(out)
    assert "(will retry after 5s)" in out.stderr, _explain(out)
    assert "Warning: ignoring DaemonSet-managed Pods: kube-system/agent-" in out.stderr, _explain(out)
    assert out.stdout.count(" evicted") == 2 and f"node/{old} drained" in out.stdout, _explain(out)
    # ...and web runs on the new node only, never below its budget at the end
    assert {p["spec"]["nodeName"] for p in b.wait_ready(sb, 2)} == {new}
    assert sb.store.require("nodes", None, old)["spec"]["unschedulable"] is True
    evictions = [e.status for e in sb.request_log.entries() if e.path.endswith("/eviction")]
    assert evictions.count(201) == 2 and 429 in evictions, evictions


def test_drain_refuses_unmanaged_pods_unless_forced(sb: Sandbox, kubectl: Kubectl) -> None:
    """filters.go unreplicatedFilter: a pod without a controller blocks the drain without --force."""
    node = b.make_ready_node(sb, 1)
    sb.apply(b.pod("bare", nodeName=node))
    b.wait_ready(sb, 1)
    # When drained without --force, it refuses and names the pod
    out = _drain(kubectl, node, ok=False)
    assert out.returncode != 0, _explain(out)
    assert (
        "cannot delete Pods that declare no controller (use --force to override): default/bare" in out.stderr
    ), _explain(out)
    assert sb.store.get("pods", "default", "bare") is not None
    # When forced, it warns, evicts and succeeds
    out = _drain(kubectl, node, "--force")
    assert "Warning: deleting Pods that declare no controller: default/bare" in out.stderr, _explain(out)
    assert "pod/bare evicted" in out.stdout and f"node/{node} drained" in out.stdout, _explain(out)
    sb.wait_for(lambda: sb.store.get("pods", "default", "bare") is None, timeout=5, what="bare pod gone")


def test_drain_statefulset_pod_returns_in_its_volume_zone(sb: Sandbox, kubectl: Kubectl) -> None:
    """drain.go waitForDelete treats "same name, different UID" as deleted: the StatefulSet pod
    comes back as redis-0 with a new UID and a new IP, on an untainted node in its volume's zone."""
    # Given redis-0 on the old zone-a node, its EBS volume in zone a
    old = b.make_ready_node(sb, 1, b.AZS[0])
    sb.apply(b.statefulset("redis", 1))
    before = b.wait_ready(sb, 1, selector="app=redis")[0]
    # ...a new node in zone b, and a new one in zone a
    b.make_ready_node(sb, 2, b.AZS[1])
    new_a = b.make_ready_node(sb, 3, b.AZS[0])
    # ...and GETs of redis-0 answered 300 ms late, so kubectl's 1 s poll never lands in the
    # instant between the old object's removal and the new one's creation: it must compare UIDs
    sb.faults.add(method="GET", path=r"/namespaces/default/pods/redis-0$", delay_s=0.3)
    mark = sb.request_log.mark()
    # When the old node is drained
    out = _drain(kubectl, old)
    # Then the drain finished
    assert "pod/redis-0 evicted" in out.stdout and f"node/{old} drained" in out.stdout, _explain(out)
    after = b.wait_ready(sb, 1, selector="app=redis")[0]
    assert after["metadata"]["name"] == "redis-0"
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["status"]["podIP"] != before["status"]["podIP"]
    assert after["spec"]["nodeName"] == new_a
    # ...and kubectl stopped waiting on a 200 with the new UID, never on a 404
    gets: list[Any] = [
        e
        for e in sb.request_log.entries(mark)
        if e.method == "GET" and e.path == "/api/v1/namespaces/default/pods/redis-0"
    ]
    assert gets and all(e.status == 200 for e in gets), [(e.status, e.at) for e in gets]
