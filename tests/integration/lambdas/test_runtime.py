"""lambdas._runtime's Powertools Tracer, in a Lambda-like process (LAMBDA_TASK_ROOT, a sampled
trace header) sending to a UDP socket standing in for the X-Ray daemon: a step is a segment
annotated with the step, each AWS SDK call and each Kubernetes API call a subsegment. Outside
Lambda (the sandbox) nothing is sent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

# A step whose service makes one AWS SDK call (to a closed port: it fails, the call is traced
# anyway) and one Kubernetes call through the adapter's client (to the local API stand-in).
STEP = textwrap.dedent(
    """
    import sys
    import boto3
    from botocore.config import Config
    from kubernetes import client
    from pydantic import BaseModel
    from eks_rolling.k8s.ops import TracedApiClient
    from lambdas._runtime import step_handler

    class In(BaseModel):
        pass

    class Out(BaseModel):
        nodes: int

    def probe(inp, deps):
        asg = boto3.client("autoscaling", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                           aws_access_key_id="a", aws_secret_access_key="b",
                           config=Config(retries={"max_attempts": 1}, connect_timeout=1))
        try:
            asg.describe_auto_scaling_groups()
        except Exception:
            pass
        cfg = client.Configuration()
        cfg.host = sys.argv[1]
        return Out(nodes=len(client.CoreV1Api(TracedApiClient(cfg)).list_node().items))

    class Context:
        function_name = "eks-rolling-probe"
        memory_limit_in_mb = 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:eks-rolling-probe"
        aws_request_id = "req-1"

    print(step_handler(In, probe)({}, Context()))
    """
)


class _Nodes(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def kube_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Nodes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _run_step(kube_api: str, env: dict[str, str]) -> list[dict[str, Any]]:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAMBDA_", "AWS_LAMBDA", "_X_AMZN", "POWERTOOLS_TRACE"))
    }
    run = subprocess.run(
        [sys.executable, "-c", STEP, kube_api],
        env={**base, "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "'nodes': 0" in run.stdout, run.stderr[-3000:]
    docs: list[dict[str, Any]] = []
    daemon.settimeout(2)
    try:
        while True:  # each packet: a header line, then one (sub)segment document
            docs.append(json.loads(daemon.recv(65536).decode().split("\n", 1)[1]))
    except TimeoutError:
        pass
    finally:
        daemon.close()
    return docs


def _walk(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield doc
    for sub in doc.get("subsegments") or []:
        yield from _walk(sub)


def test_in_lambda_a_step_is_traced_with_its_sdk_and_kubernetes_calls(kube_api: str) -> None:
    docs = _run_step(
        kube_api,
        {
            "LAMBDA_TASK_ROOT": "/var/task",
            "AWS_LAMBDA_FUNCTION_NAME": "eks-rolling-probe",
            "_X_AMZN_TRACE_ID": TRACE,
        },
    )
    segments = [s for d in docs for s in _walk(d)]
    (handler,) = [s for s in segments if s["name"] == "## handler"]
    assert handler["annotations"]["step"] == "probe" and handler["trace_id"] == TRACE.split(";")[0][5:]
    (sdk,) = [s for s in segments if s.get("namespace") == "aws"]
    assert sdk["name"] == "autoscaling" and sdk["aws"]["operation"] == "DescribeAutoScalingGroups"
    (kube,) = [s for s in segments if s["name"] == "kubernetes"]
    assert kube["namespace"] == "remote"
    assert kube["http"]["request"] == {"method": "GET", "url": f"{kube_api}/api/v1/nodes"}
    assert kube["http"]["response"]["status"] == 200


def test_outside_lambda_nothing_is_traced(kube_api: str) -> None:
    assert _run_step(kube_api, {"_X_AMZN_TRACE_ID": TRACE}) == []
