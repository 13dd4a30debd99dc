"""The sandbox's HTTPS hook endpoint with a known signing identity: the caller signs with the
environment's credentials, the endpoint recomputes every SigV4 signature with the same ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from botocore.credentials import ReadOnlyCredentials

from eks_rolling_sandbox.api.tls import make_tls
from eks_rolling_sandbox.cloud.hooks import HttpsHookServer

CREDS = ReadOnlyCredentials("AKIDHOOKTEST", "hook-secret", None)


@contextmanager
def https_hook_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsHookServer]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDS.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with HttpsHookServer(make_tls(tmp_path / "pki"), CREDS, region="us-east-1") as s:
        yield s
