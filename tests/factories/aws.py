"""Point the tool's AWS clients, as the Lambda steps build them, at a moto server."""

from __future__ import annotations

import pytest


def use_moto(monkeypatch: pytest.MonkeyPatch, endpoint_url: str, region: str = "us-east-1") -> None:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "EKS_ROLLING_AWS_ENDPOINT_URL": endpoint_url,
        "EKS_ROLLING_REGION": region,
    }.items():
        monkeypatch.setenv(k, v)
