"""The sandbox authenticates like EKS: the tool's real token (presigned STS GetCallerIdentity for
this cluster) is accepted, anything else gets 401."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from eks_rolling.aws.clients import aws_client
from eks_rolling.aws.eks_auth import get_token, kube_connection
from eks_rolling.k8s.ops import api_client
from eks_rolling.settings import Settings
from eks_rolling_sandbox.api.auth import TOKEN_PREFIX, eks_token_validator, token_problem
from eks_rolling_sandbox.env import SandboxEnv


@pytest.fixture(scope="module")
def env() -> Iterator[SandboxEnv]:
    with SandboxEnv(cluster_name="auth-test") as e, e.applied():
        yield e


def _nodes(env: SandboxEnv, token: str | None) -> int:
    cfg = client.Configuration()
    cfg.host = env.sandbox.url
    assert env.tls is not None
    cfg.ssl_ca_cert = str(env.tls.ca)
    if token:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    return len(client.CoreV1Api(client.ApiClient(cfg)).list_node().items)


def test_the_api_speaks_https_with_the_clusters_own_ca(env: SandboxEnv) -> None:
    assert env.sandbox.url.startswith("https://")
    assert _nodes(env, "sandbox-admin") == 0


def test_the_tools_eks_token_is_accepted(env: SandboxEnv) -> None:
    settings = Settings()
    conn = kube_connection(
        settings, "auth-test", eks_client=aws_client("eks", settings), sts_client=aws_client("sts", settings)
    )
    assert conn.url == env.sandbox.url
    assert client.CoreV1Api(api_client(conn, settings)).list_namespace().items


@pytest.mark.parametrize(
    "token", [None, "garbage", "k8s-aws-v1.bm90LWEtdXJs"], ids=["none", "garbage", "not-a-url"]
)
def test_anything_else_is_unauthorized(env: SandboxEnv, token: str | None) -> None:
    with pytest.raises(ApiException) as exc:
        _nodes(env, token)
    assert exc.value.status == 401


def test_a_token_for_another_cluster_is_rejected(env: SandboxEnv) -> None:
    other = get_token(aws_client("sts", Settings()), "some-other-cluster")
    # The signature covers x-k8s-aws-id: replaying it for our cluster changes the signed header.
    assert token_problem(other, "auth-test") is None  # well formed, but...
    with pytest.raises(ApiException) as exc:
        _nodes(env, other)
    assert exc.value.status == 401


def test_a_slow_sts_answer_still_authenticates() -> None:
    # Given an STS stand-in that answers GetCallerIdentity after 6 s (moto on a machine busy
    # simulating 1,000 nodes did; a 5 s timeout once turned that into 401s that failed a roll)
    class SlowSts(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(6)
            body = b"<GetCallerIdentityResponse/>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowSts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        signed = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        url = (
            f"http://127.0.0.1:{server.server_address[1]}/?Action=GetCallerIdentity"
            f"&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Date={signed}"
        )
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        # Then the token is accepted, late
        assert eks_token_validator("sandbox")(token) is True
    finally:
        server.shutdown()
