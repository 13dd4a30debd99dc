"""Load generators against real Redis: no loss when nothing moves, and a loss verify() must catch."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from eks_rolling.labels import REDIS_PORT
from eks_rolling_sandbox.redis.procs import (
    ClusterLayout,
    RedisConfig,
    RedisProcess,
    info,
    replica_synced,
    wait_until,
)
from eks_rolling_sandbox.traffic.writers import (
    RETRY_WINDOW_S,
    SENTINEL_TIMEOUT_S,
    SOCKET_TIMEOUT_S,
    ClusterWriter,
    DirectWriter,
    SentinelWriter,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

log = logging.getLogger(__name__)

Spawn = Callable[[RedisConfig], RedisProcess]
Ips = Callable[[int], list[str]]
PASSWORD = "s3cret-Pa55"


def test_sentinel_writer_loses_nothing_without_failover(
    sentinel_setup: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    setup = sentinel_setup(3, password=PASSWORD)
    writer = SentinelWriter(setup.sentinel_addrs, "mymaster", prefix="sw", max_seconds=2.0, password=PASSWORD)
    writer.start()
    assert writer.join(15), "writer must end on its own bounds"
    report = writer.stop()
    assert report.acked > 100 and report.errors == 0 and report.attempted == report.acked
    assert report.retries == 0 and report.retry_types == {}
    assert 1.9 <= report.duration_s < 5 and report.lost is None

    assert wait_until(
        lambda: replica_synced(setup.replica.cfg.address, setup.master.cfg.address, PASSWORD), 10
    )
    assert writer.verify() == 0
    final = writer.report().to_dict()
    assert final["lost"] == 0 and final["acked"] == report.acked and final["max_gap_ms"] > 0
    log.info("sentinel writer: %s", {k: v for k, v in final.items() if k != "gaps"})
    # The replica got every acknowledged write too, read through a plain client.
    assert writer.verify(lambda: setup.replica.client()) == 0
    assert PASSWORD not in caplog.text


def test_cluster_writer_loses_nothing_without_failover(
    redis_cluster: tuple[list[RedisProcess], ClusterLayout],
) -> None:
    procs, _ = redis_cluster
    writer = ClusterWriter([p.cfg.address for p in procs[:2]], prefix="cw", max_seconds=2.0)
    writer.start()
    assert writer.join(15)
    report = writer.stop()
    assert report.acked > 100 and report.errors == 0
    assert 0 < report.p99_latency_ms <= report.max_latency_ms
    assert writer.verify() == 0
    # Keys spread over every shard.
    for p in procs[:3]:
        with p.client() as c:
            assert c.dbsize() > 0
    log.info("cluster writer: %s", writer.report().to_dict())


def test_writer_measures_write_gap(spawn: Spawn, ips: Ips, tmp_path: Path) -> None:
    (ip,) = ips(1)
    master = spawn(RedisConfig("data", ip, tmp_path / "m"))
    # A socket timeout longer than the pause: the paused write waits instead of failing.
    writer = DirectWriter(ip, prefix="gw", max_seconds=10.0, socket_timeout=3.0, gap_threshold_ms=300)
    writer.start()
    assert wait_until(lambda: writer.acked_count >= 50, 5)
    with master.client() as c:
        paused_at = time.monotonic()
        c.client_pause(800, all=False)  # WRITE pause, like the planned-switchover recipe
    assert wait_until(lambda: writer.acked_count >= 50 + 100, 10)
    report = writer.stop()
    assert report.errors == 0
    # Only the gap that starts at the pause counts: a loaded CI box may stall elsewhere too.
    at_pause = [g for g in report.gaps if paused_at - 0.5 <= g.started_at <= paused_at + 0.2]
    assert len(at_pause) == 1, report.gaps
    (gap,) = at_pause
    assert 700 <= gap.length_ms <= 2500 and report.max_gap_ms == gap.length_ms
    assert not gap.open_ended and 0 < gap.offset_s < report.duration_s
    assert writer.verify() == 0


def test_a_write_held_past_the_socket_timeout_is_retried_once_and_counted(
    spawn: Spawn, ips: Ips, tmp_path: Path
) -> None:
    (ip,) = ips(1)
    master = spawn(RedisConfig("data", ip, tmp_path / "m"))
    reports = {}
    # A WRITE pause longer than the socket timeout: the first attempt times out; the retry, on
    # a fresh connection, waits out the rest of the pause. Without the retry the write fails.
    for retries in (1, 0):
        writer = DirectWriter(
            ip, prefix=f"rw{retries}", max_seconds=10.0, socket_timeout=0.7, retries=retries
        )
        writer.start()
        assert wait_until(lambda w=writer: w.acked_count >= 50, 5)  # type: ignore[misc]
        with master.client() as c:
            c.client_pause(1000, all=False)
        acked = writer.acked_count
        assert wait_until(lambda w=writer, n=acked: w.acked_count >= n + 100, 10)  # type: ignore[misc]
        reports[retries] = writer.stop()
        assert writer.verify() == 0
    with_retry, without = reports[1], reports[0]
    assert with_retry.retry_types == {"TimeoutError": 1} and with_retry.retries == 1, with_retry
    assert with_retry.errors == 0 and with_retry.attempted == with_retry.acked
    assert 900 <= with_retry.max_latency_ms <= 2500  # both attempts count in the write's latency
    assert without.retries == 0 and without.error_types == {"TimeoutError": 1}, without


def test_sentinel_writer_reports_errors_when_the_master_is_gone_beyond_the_retry(
    sentinel_setup: Callable[..., Any],
) -> None:
    """The positive control of `write_errors`: a master that is gone, with no failover (the
    sentinels wait a minute before calling it down), fails writes once the retry window passed."""
    setup = sentinel_setup(3, down_after_ms=60_000)
    writer = SentinelWriter(setup.sentinel_addrs, "mymaster", prefix="kw", max_seconds=30.0)
    writer.start()
    assert wait_until(lambda: writer.acked_count >= 50, 10)
    setup.master.kill()
    assert wait_until(lambda: writer.report().errors >= 3, 20), writer.report()
    report = writer.stop()
    assert set(report.error_types) == {"ConnectionError"}, report
    # Every failed write was retried first, several times, each on a fresh client (a new master
    # lookup), for no longer than the retry window (plus its last attempt's lookup and connect).
    assert report.retry_types == {"ConnectionError": report.retries}
    assert report.retries >= 3 * report.errors >= 9 and report.attempted == report.acked + report.errors
    assert report.max_latency_ms <= (RETRY_WINDOW_S + 2 * SENTINEL_TIMEOUT_S + SOCKET_TIMEOUT_S) * 1000
    assert report.gaps and report.gaps[-1].open_ended


def test_verify_detects_writes_lost_to_a_split_brain(spawn: Spawn, ips: Ips, tmp_path: Path) -> None:
    """The plain-failover failure mode: the replica is promoted while the old master still
    accepts writes; re-pointing the old master then throws them away with a full resync."""
    m_ip, r_ip = ips(2)
    old = spawn(RedisConfig("data", m_ip, tmp_path / "m"))
    new = spawn(RedisConfig("data", r_ip, tmp_path / "r", replicaof=(m_ip, REDIS_PORT)))
    assert wait_until(lambda: replica_synced(new.cfg.address, old.cfg.address), 10)

    writer = DirectWriter(m_ip, prefix="lw", interval_s=0.002, max_seconds=20.0)
    writer.start()
    assert wait_until(lambda: writer.acked_count >= 100, 10)
    with new.client() as c:
        c.replicaof("NO", "ONE")
    acked_at_promotion = writer.acked_count
    assert wait_until(lambda: writer.acked_count >= acked_at_promotion + 100, 10)
    report = writer.stop()
    after_promotion = report.acked - acked_at_promotion
    assert report.errors == 0

    full_before = info(r_ip, REDIS_PORT, "stats")["sync_full"]
    with old.client() as c:
        c.replicaof(r_ip, REDIS_PORT)
    assert wait_until(lambda: replica_synced(old.cfg.address, new.cfg.address), 10)
    assert info(r_ip, REDIS_PORT, "stats")["sync_full"] == full_before + 1

    lost = writer.verify(lambda: redis.Redis(host=r_ip, port=REDIS_PORT, decode_responses=True))
    # Every write acknowledged after the promotion reply is gone (at most one was in flight).
    assert after_promotion - 1 <= lost <= report.acked
    assert writer.report().lost == lost > 0
    with old.client() as c:
        assert c.get(writer.key(report.acked - 1)) is None  # the old master's copy went too
