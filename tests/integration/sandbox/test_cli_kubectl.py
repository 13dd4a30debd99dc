"""Real kubectl 1.32 against `eks-rolling-sandbox up` (HTTPS, EKS-style token), as a new user
would try it: `create deployment`, `create poddisruptionbudget`, `scale deployment`,
`get -o yaml`, `rollout status` and `drain`. The typed commands send protobuf bodies; before the
sandbox had a protobuf codec `create deployment` failed with 415."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.sandbox.test_cli import _wait_for_line

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]
BIN = Path(sys.executable).parent


def test_kubectl_typed_commands_against_sandbox_up(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            str(BIN / "eks-rolling-sandbox"),
            "up",
            "--kubeconfig",
            str(kubeconfig),
            "--scenario",
            "field-report",
            "--no-redis",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def kubectl(*args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert out.returncode == 0, (
            f"kubectl {' '.join(args)}: rc={out.returncode}\n{out.stdout}\n{out.stderr}"
        )
        return out.stdout

    try:
        _wait_for_line(proc, r"Ctrl-C to stop", timeout=90)
        # When a user creates a Deployment and its PDB with kubectl's generators
        assert "deployment.apps/hello created" in kubectl(
            "create", "deployment", "hello", "--image=nginx:1.27", "--replicas=2", "--port=8080"
        )
        assert "poddisruptionbudget.policy/hello created" in kubectl(
            "create", "poddisruptionbudget", "hello", "--selector=app=hello", "--max-unavailable=1"
        )
        # ...scales it and waits for the rollout
        assert "deployment.apps/hello scaled" in kubectl("scale", "deployment", "hello", "--replicas=3")
        assert 'deployment "hello" successfully rolled out' in kubectl(
            "rollout", "status", "deployment/hello", "--timeout=60s", timeout=90
        )
        # Then the objects read back as created
        deploy = yaml.safe_load(kubectl("get", "deployment", "hello", "-o", "yaml"))
        assert deploy["spec"]["replicas"] == 3 and deploy["status"]["readyReplicas"] == 3
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "nginx:1.27" and container["ports"] == [{"containerPort": 8080}]
        pdb = yaml.safe_load(kubectl("get", "pdb", "hello", "-o", "yaml"))
        assert pdb["spec"]["maxUnavailable"] == 1 and pdb["spec"]["selector"] == {
            "matchLabels": {"app": "hello"}
        }
        # When the node of one of its pods is drained
        pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json"))["items"]
        node = pods[0]["spec"]["nodeName"]
        out = kubectl(
            "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s", timeout=150
        )
        # Then it is drained and the Deployment is whole again on other nodes
        assert f"node/{node} drained" in out, out
        kubectl("rollout", "status", "deployment/hello", "--timeout=60s", timeout=90)
        pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json"))["items"]
        running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert len(running) == 3 and node not in {p["spec"]["nodeName"] for p in running}
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0
