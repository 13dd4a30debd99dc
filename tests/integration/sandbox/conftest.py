"""Fixtures for the sandbox's own tests: one fresh sandbox per test (about 0.2 s to start and stop),
built with the default Timings unless a test asks `make_sandbox(timings=...)`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from eks_rolling_sandbox.controllers.base import Timings
from eks_rolling_sandbox.sandbox import Sandbox

# Pods start, turn Ready and exit a little faster than the sandbox defaults (2-core CI).
FAST: dict[str, float] = {"pod_start_s": 0.05, "pod_ready_s": 0.1, "pod_exit_s": 0.1}


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(**timings: Any) -> Sandbox:
        sb = Sandbox(timings=Timings(**{**FAST, **timings}), watch_max_s=5.0).start()
        started.append(sb)
        return sb

    yield make
    for sb in reversed(started):
        sb.stop()


@pytest.fixture
def sb(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def api_client(sb: Sandbox) -> Iterator[Any]:
    c = sb.client()
    yield c
    c.close()


@pytest.fixture
def core(api_client: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: Any) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def policy(api_client: Any) -> client.PolicyV1Api:
    return client.PolicyV1Api(api_client)
