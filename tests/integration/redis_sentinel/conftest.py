"""The Sentinel integration tests' sandbox: see support.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import field_report
from tests.integration.redis_sentinel.support import (
    SENTINELS,
    SentinelField,
    private_node_indices,
    wait_for,
)


@pytest.fixture
def sentinel(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentinelField]:
    """Given the group up, sentinels converged, and a new node per zone."""
    private_node_indices(monkeypatch)
    with SandboxEnv(redis=True) as env:
        scenario = field_report(env, redis=True, redis_kinds=("sentinel",))
        scenario.add_nodes()
        f = SentinelField(env, scenario, {"redis_phase_timeout_s": "60"})
        wait_for(f.converged, 40, "the sentinels to converge", describe=f.describe)
        yield f
        for s in SENTINELS:  # a test that froze a process must not leave it stopped
            with contextlib.suppress(AssertionError, ProcessLookupError):
                f.freeze(s, frozen=False)
