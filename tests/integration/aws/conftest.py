"""The AWS adapters' tests: the module's moto server (tests/integration/conftest.py), wiped before
each test; adapters get clients via `aws_client`."""

from __future__ import annotations

from typing import Any

import pytest

from eks_rolling.aws.clients import aws_client
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.moto_server import MotoServer

REGION = "us-east-1"


@pytest.fixture
def settings(moto: MotoServer) -> Settings:
    return Settings(region=REGION, aws_endpoint_url=moto.endpoint_url)


@pytest.fixture
def clients(settings: Settings) -> dict[str, Any]:
    """Clients built exactly as the Lambda steps build them."""
    return {name: aws_client(name, settings) for name in ("autoscaling", "ec2", "dynamodb", "eks", "sts")}
