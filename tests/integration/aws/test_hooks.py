"""HookCaller's HTTPS call against the sandbox's hook endpoint over real TLS: the request is
signed with SigV4 and the endpoint verifies it by recomputing the signature with botocore."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eks_rolling.aws.hooks import HookCaller
from eks_rolling.planning.hooks import payload
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.hooks import HttpsHookServer
from tests.factories.hooks import https_hook_server

BODY = payload("post_replace", roll="run-1", asg="ng", node="ip-1", instance_id="i-1", az="us-east-1a")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsHookServer]:
    with https_hook_server(tmp_path, monkeypatch) as s:
        yield s


def caller(server: HttpsHookServer, **settings: str) -> HookCaller:
    return HookCaller(Settings(region="us-east-1", hook_ca_file=str(server.tls.ca), **settings))  # type: ignore[arg-type]


def test_a_signed_post_is_verified_and_recorded(server: HttpsHookServer) -> None:
    answer = caller(server).call(server.url, BODY, 5)
    assert answer.ok and "HTTP 200" in answer.detail
    (call,) = server.recorder.calls
    assert call.verified and call.body == json.loads(BODY)


def test_a_signature_for_another_service_is_refused_and_final(server: HttpsHookServer) -> None:
    answer = caller(server, hook_signing_service="lambda").call(server.url, BODY, 5)
    assert not answer.ok and not answer.retry and "HTTP 403" in answer.detail
    assert server.refused == ["signed for us-east-1/lambda, expected us-east-1/execute-api"]


def test_a_wrong_secret_does_not_verify(server: HttpsHookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    answer = caller(server).call(server.url, BODY, 5)
    assert not answer.ok and server.refused == ["signature does not match"]


def test_an_endpoint_failure_may_be_retried(server: HttpsHookServer) -> None:
    server.recorder.fail_times = 1
    first, second = caller(server).call(server.url, BODY, 5), caller(server).call(server.url, BODY, 5)
    assert (first.ok, first.retry, second.ok) == (False, True, True)


def test_an_untrusted_certificate_is_a_final_failure(server: HttpsHookServer) -> None:
    answer = HookCaller(Settings(region="us-east-1")).call(server.url, BODY, 5)
    assert not answer.ok and not answer.retry and "CERTIFICATE_VERIFY_FAILED" in answer.detail
