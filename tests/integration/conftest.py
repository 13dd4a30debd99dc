"""Fixtures of the integration tests: one moto server per test module, and real redis-server
processes on private loopback addresses.

Helpers are exposed as fixtures (not importable names): other test trees have their own
``conftest`` modules, so ``from conftest import ...`` would be ambiguous.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eks_rolling.labels import REDIS_PORT
from eks_rolling_sandbox.cloud.bridge import address_in_use
from eks_rolling_sandbox.cloud.moto_server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MotoServer
from eks_rolling_sandbox.redis.procs import (
    ClusterLayout,
    RedisConfig,
    RedisProcess,
    SentinelMonitor,
    cluster_create,
    replica_synced,
    stop_many,
    wait_until,
)

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
def _fresh_moto(request: pytest.FixtureRequest) -> None:
    """A test that uses the module's moto server starts from an empty one: moto keeps one world
    per process, so what an earlier module created would still be there."""
    if "moto" in request.fixturenames:
        request.getfixturevalue("moto").reset()


# 127.201.0.0/16 belongs to these tests. The third octet starts at a pid-derived offset so two
# concurrent sessions rarely probe the same addresses, and every address is checked free anyway.
_candidates = (f"127.201.{(c + os.getpid()) % 250 + 1}.{h}" for c in itertools.count() for h in range(1, 255))


def _next_ip() -> str:
    for _ in range(5000):
        ip = next(_candidates)
        if not address_in_use(ip):
            return ip
    raise RuntimeError("no free 127.201.x.y address")


@pytest.fixture
def ips() -> Callable[[int], list[str]]:
    """``ips(n)``: n loopback addresses with nothing listening on 6379, 16379 or 26379."""
    return lambda n: [_next_ip() for _ in range(n)]


Spawn = Callable[[RedisConfig], RedisProcess]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a process and wait until it answers PING; every process is stopped at teardown."""
    procs: list[RedisProcess] = []

    def _spawn(cfg: RedisConfig) -> RedisProcess:
        proc = RedisProcess(cfg)
        procs.append(proc)
        proc.start()
        assert proc.wait_ready(10), f"{proc!r} did not answer PING; log: {cfg.log_path}"
        return proc

    yield _spawn
    stop_many(procs, grace_s=5)
    leftovers = [p for p in procs if p.is_running]
    assert not leftovers, f"processes left behind: {leftovers}"


@dataclasses.dataclass
class SentinelSetup:
    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]
    name: str = "mymaster"

    @property
    def sentinel_addrs(self) -> list[tuple[str, int]]:
        return [s.cfg.address for s in self.sentinels]


@pytest.fixture
def sentinel_setup(
    spawn: Spawn, ips: Callable[[int], list[str]], tmp_path: Path
) -> Callable[..., SentinelSetup]:
    """``sentinel_setup(n_sentinels, password=None, down_after_ms=5000)``.

    1 master + 1 synced replica, then the sentinels: started last, they find the replica in the
    master's first INFO reply instead of waiting for the 10 s INFO period.
    """

    def _make(n_sentinels: int, password: str | None = None, down_after_ms: int = 5000) -> SentinelSetup:
        m_ip, r_ip, *s_ips = ips(2 + n_sentinels)
        master = spawn(RedisConfig("data", m_ip, tmp_path / "m", password=password))
        replica = spawn(
            RedisConfig("data", r_ip, tmp_path / "r", replicaof=(m_ip, REDIS_PORT), password=password)
        )
        assert wait_until(lambda: replica_synced(replica.cfg.address, master.cfg.address, password), 10)
        monitor = SentinelMonitor(
            "mymaster",
            m_ip,
            REDIS_PORT,
            quorum=min(2, n_sentinels),
            down_after_ms=down_after_ms,
            auth_pass=password,
        )
        sentinels = [
            spawn(RedisConfig("sentinel", ip, tmp_path / f"s{k}", monitors=[monitor]))
            for k, ip in enumerate(s_ips)
        ]
        return SentinelSetup(master, replica, sentinels)

    return _make


@pytest.fixture
def redis_cluster(
    spawn: Spawn, ips: Callable[[int], list[str]], tmp_path: Path
) -> tuple[list[RedisProcess], ClusterLayout]:
    """6 cluster nodes on 6 addresses: 3 masters (nodes 0-2) and their replicas (nodes 3-5)."""
    procs = [spawn(RedisConfig("cluster", ip, tmp_path / f"n{k}")) for k, ip in enumerate(ips(6))]
    layout = cluster_create([p.cfg.address for p in procs], replicas=1, timeout_s=30)
    return procs, layout
