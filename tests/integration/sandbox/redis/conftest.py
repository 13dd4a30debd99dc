"""Fixtures for the sandbox Redis tests. Every test's teardown stops its sandboxes, closes the
runtimes and asserts that no redis-server of that test is left."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eks_rolling_sandbox.redis.runtime import RedisRuntime
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories.redis import RedisSandbox, free_indices, leftover_processes

MakeSandbox = Callable[[dict[str, int]], RedisSandbox]


@pytest.fixture
def redis_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    """``make({zone: n_nodes, ...})`` starts a Sandbox with the runtime and that many Ready nodes."""
    made: list[RedisSandbox] = []

    def make(zones: dict[str, int]) -> RedisSandbox:
        root = tmp_path / f"redis-{len(made)}"
        runtime = RedisRuntime(root)
        sandbox = Sandbox(runtime=runtime)
        runtime.attach(sandbox.store)
        env = RedisSandbox(sandbox, runtime, root)
        made.append(env)
        sandbox.start()
        indices = iter(free_indices(sum(zones.values())))
        for zone, count in zones.items():
            for _ in range(count):
                env.add_node(zone, next(indices))
        return env

    yield make
    for env in made:
        env.stop()
        assert leftover_processes(env) == []
