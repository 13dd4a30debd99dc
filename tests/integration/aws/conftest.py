"""One moto server per test module, wiped between tests; adapters get clients via `aws_client`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eks_rolling.aws.clients import aws_client
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.moto_server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MotoServer

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    # The adapters resolve credentials the way Lambda does: from the environment.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_KEY)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        # Skip moto's catalogue of public AMIs: loading it makes every reset ~0.7 s slower,
        # and moto does not validate ImageId unless told to.
        mp.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        with MotoServer(region=REGION) as server:
            yield server


@pytest.fixture(autouse=True)
def _fresh_moto(moto: MotoServer) -> Iterator[None]:
    moto.reset()
    yield


@pytest.fixture
def settings(moto: MotoServer) -> Settings:
    return Settings(region=REGION, aws_endpoint_url=moto.endpoint_url)


@pytest.fixture
def clients(settings: Settings) -> dict[str, Any]:
    """Clients built exactly as the Lambda steps build them."""
    return {name: aws_client(name, settings) for name in ("autoscaling", "ec2", "dynamodb", "eks", "sts")}
