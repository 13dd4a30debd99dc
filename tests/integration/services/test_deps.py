"""A warm Lambda reuses its EKS token, but never so long that a step started at the end of the
reuse window outlives the token: EKS accepts one for 15 minutes after signing (the sandbox's API
server applies the same rule), and a step may run its whole Lambda timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from eks_rolling.services import deps as deps_module
from eks_rolling.services.deps import EKS_TOKEN_VALID_S, TOKEN_REUSE_S, Deps
from eks_rolling.settings import Settings
from eks_rolling.steps import LAMBDA_TIMEOUT_S
from eks_rolling_sandbox.api.auth import MAX_AGE_S, decode_token, token_problem
from eks_rolling_sandbox.env import SandboxEnv

CLUSTER = "token-reuse"
CLOCK_SKEW_S = 60  # Lambda's clock against the API server's


@pytest.fixture
def env() -> Iterator[SandboxEnv]:
    deps_module._api_clients.clear()
    with SandboxEnv(cluster_name=CLUSTER) as e, e.applied():
        yield e
    deps_module._api_clients.clear()


def _token(api: object) -> str:
    token: str = api.configuration.api_key["authorization"]  # type: ignore[attr-defined]
    return token


def _signed_at(token: str) -> datetime:
    url = decode_token(token)
    assert url is not None
    (stamp,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_the_cached_connection_is_renewed_after_the_reuse_window(
    env: SandboxEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm Lambda that connected once
    start = time.monotonic()
    first = Deps(Settings()).kube(CLUSTER).core.api_client
    assert Deps(Settings()).kube(CLUSTER).core.api_client is first
    # When the next invocation comes just before / just after the reuse window
    monkeypatch.setattr(deps_module.time, "monotonic", lambda: start + TOKEN_REUSE_S - 5)
    assert Deps(Settings()).kube(CLUSTER).core.api_client is first
    monkeypatch.setattr(deps_module.time, "monotonic", lambda: start + TOKEN_REUSE_S + 5)
    renewed = Deps(Settings()).kube(CLUSTER).core.api_client
    # Then it gets a new connection, with a token the API server accepts
    assert renewed is not first
    assert Deps(Settings()).kube(CLUSTER).core.list_node().items is not None


def test_a_token_taken_at_the_end_of_the_window_outlives_the_longest_step(env: SandboxEnv) -> None:
    token = _token(Deps(Settings()).kube(CLUSTER).core.api_client)
    signed = _signed_at(token)
    assert EKS_TOKEN_VALID_S == MAX_AGE_S
    # the last request of a step that took the cached token just before it was renewed
    last_use = signed + timedelta(seconds=TOKEN_REUSE_S + LAMBDA_TIMEOUT_S + CLOCK_SKEW_S)
    assert token_problem(token, CLUSTER, now=last_use) is None
    # positive control: the previous 10-minute reuse let such a step run into a 401
    too_late = signed + timedelta(seconds=600 + LAMBDA_TIMEOUT_S + CLOCK_SKEW_S)
    assert token_problem(token, CLUSTER, now=too_late) is not None
