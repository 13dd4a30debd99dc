"""The Redis procedures' fields: `sentinel` and `cluster`, each a sandbox with one Redis group on real
redis-server processes (tests/factories/redis_sentinel.py and redis_cluster.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from eks_rolling.settings import Settings
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import field_report
from tests.factories.redis_cluster import RUN, ClusterField
from tests.factories.redis_sentinel import (
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


@pytest.fixture
def cluster() -> Iterator[ClusterField]:
    with SandboxEnv(redis=True) as env:
        scenario = field_report(env, redis=True, redis_kinds=("cluster",))
        old = [
            n["metadata"]["name"]
            for n in env.sandbox.store.all("nodes")
            if (n["metadata"].get("labels") or {}).get("role") == "worker"
        ]
        scenario.add_nodes()
        f = ClusterField(env, scenario, scenario.extras["redis_cluster"], {"redis_phase_timeout_s": "60"})
        with env.applied():
            kube = f.deps().kube(env.cluster_name)
            for name in old:
                kube.add_taint(name, Settings().taint_key, RUN)
        yield f
