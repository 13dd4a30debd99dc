"""Real redis-server processes: lifecycle, pod moves to a new IP, Sentinel and Cluster."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from eks_rolling.labels import REDIS_PORT, SENTINEL_PORT
from eks_rolling_sandbox.redis.procs import (
    ClusterLayout,
    RedisConfig,
    RedisProcess,
    SentinelMonitor,
    cluster_info,
    cluster_nodes,
    info,
    render_config,
    replica_synced,
    running_processes,
    wait_until,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

log = logging.getLogger(__name__)

Spawn = Callable[[RedisConfig], RedisProcess]
Ips = Callable[[int], list[str]]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_data_process_start_ping_stop(spawn: Spawn, ips: Ips, tmp_path: Path) -> None:
    (ip,) = ips(1)
    proc = spawn(RedisConfig("data", ip, tmp_path / "d", password="pw-not-logged"))
    assert proc.is_running and proc.ping() and proc.cfg.port == REDIS_PORT
    with proc.client() as c:
        assert c.set("k", "v") and c.get("k") == "v"
    assert "pw-not-logged" not in repr(proc.cfg)
    pid = proc.pid
    assert pid is not None

    proc.stop(grace_s=5)
    assert not proc.is_running and proc.returncode == 0
    assert _gone(pid), "stopped process must be reaped, not left as a zombie"
    assert proc not in running_processes()
    assert not proc.ping()
    proc.stop(grace_s=5)  # idempotent
    assert "DB saved on disk" in proc.cfg.log_path.read_text()


def test_kill_reaps_and_config_is_rendered_as_documented(spawn: Spawn, ips: Ips, tmp_path: Path) -> None:
    ip, master_ip = ips(2)
    cfg = RedisConfig(
        "cluster", ip, tmp_path / "c", replica_priority=10, announce_ip=ip, extra={"maxclients": "500"}
    )
    text = render_config(cfg)
    for line in (
        f"bind {ip}",
        f"bind-source-addr {ip}",
        "protected-mode no",
        "save 3600 1",
        "appendonly no",
        "repl-diskless-sync yes",
        "shutdown-timeout 10",
        "cluster-enabled yes",
        "cluster-config-file nodes.conf",
        "cluster-node-timeout 5000",
        f"cluster-announce-ip {ip}",
        "replica-priority 10",
        "maxclients 500",
    ):
        assert line in text.splitlines(), line
    sentinel = RedisConfig(
        "sentinel", ip, tmp_path / "s", monitors=[SentinelMonitor("m", master_ip, REDIS_PORT, 2)]
    )
    assert sentinel.port == SENTINEL_PORT and f"sentinel monitor m {master_ip} 6379 2" in render_config(
        sentinel
    )

    proc = spawn(cfg)
    with proc.client() as c:
        assert c.config_get("maxclients") == {"maxclients": "500"}
    pid = proc.pid
    assert pid is not None
    proc.kill()
    assert proc.returncode == -9 and _gone(pid) and not proc.is_running


_LEAVE_RUNNING = """
import sys
from pathlib import Path
from eks_rolling_sandbox.redis.procs import RedisConfig, RedisProcess
p = RedisProcess(RedisConfig("data", sys.argv[1], Path(sys.argv[2])))
p.start()
assert p.wait_ready(10)
print(p.pid, flush=True)
"""


def test_interpreter_exit_leaves_no_redis_behind(ips: Ips, tmp_path: Path) -> None:
    """A sandbox that exits without stopping its pods must not leave redis-server running."""
    (ip,) = ips(1)
    done = subprocess.run(
        [sys.executable, "-c", _LEAVE_RUNNING, ip, str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    pid = int(done.stdout.strip())
    assert wait_until(lambda: _gone(pid), 5), f"redis-server {pid} survived its parent"


def test_restart_on_new_ip_keeps_data(spawn: Spawn, ips: Ips, tmp_path: Path) -> None:
    old_ip, new_ip = ips(2)
    proc = spawn(RedisConfig("data", old_ip, tmp_path / "vol"))
    with proc.client() as c:
        c.mset({f"k:{i}": i for i in range(1000)})
    proc.stop(grace_s=10)  # SIGTERM: redis writes dump.rdb before exiting

    moved = spawn(dataclasses.replace(proc.cfg, ip=new_ip))
    with moved.client() as c:
        assert c.dbsize() == 1000 and c.get("k:999") == "999"
    assert not proc.ping()


def test_replica_restarted_on_new_ip_resyncs_partially(spawn: Spawn, ips: Ips, tmp_path: Path) -> None:
    m_ip, r_ip, r_new_ip = ips(3)
    master = spawn(RedisConfig("data", m_ip, tmp_path / "m"))
    replica = spawn(RedisConfig("data", r_ip, tmp_path / "r", replicaof=(m_ip, REDIS_PORT)))
    with master.client() as m:
        m.mset({f"a:{i}": i for i in range(2000)})
        assert wait_until(lambda: replica_synced(replica.cfg.address, master.cfg.address), 10)
        before = info(m_ip, REDIS_PORT, "stats")

        replica.stop(grace_s=10)
        m.mset({f"b:{i}": i for i in range(500)})  # written while the pod is away: served from the backlog
        t0 = time.monotonic()
        moved = spawn(dataclasses.replace(replica.cfg, ip=r_new_ip))
        assert wait_until(lambda: replica_synced(moved.cfg.address, master.cfg.address), 10)
        log.info("replica resynced %.3fs after start on the new IP", time.monotonic() - t0)

    after = info(m_ip, REDIS_PORT, "stats")
    assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
    assert after["sync_full"] == before["sync_full"]
    slaves = [v for k, v in info(m_ip, REDIS_PORT, "replication").items() if k.startswith("slave")]
    assert [s["ip"] for s in slaves if isinstance(s, dict)] == [r_new_ip]
    with moved.client() as r:
        assert r.dbsize() == 2500


def _sentinel_master(s: RedisProcess, name: str = "mymaster") -> dict[str, Any]:
    with s.client() as c:
        state: dict[str, Any] = c.sentinel_master(name)
        return state


def _replicas(s: RedisProcess, name: str = "mymaster") -> dict[str, set[str]]:
    """ip -> flags of every replica this sentinel knows."""
    with s.client() as c:
        return {r["ip"]: set(r["flags"].split(",")) for r in c.sentinel_slaves(name)}


def test_sentinels_monitor_master_and_report_its_replica(sentinel_setup: Callable[..., Any]) -> None:
    setup = sentinel_setup(3)
    t0 = time.monotonic()

    def converged() -> bool:
        states = [_sentinel_master(s) for s in setup.sentinels]
        return all(st["num-slaves"] == 1 and st["num-other-sentinels"] == 2 for st in states)

    assert wait_until(converged, 15), [_sentinel_master(s) for s in setup.sentinels]
    log.info("3 sentinels saw the replica and each other after %.2fs", time.monotonic() - t0)
    for s in setup.sentinels:
        assert _replicas(s) == {setup.replica.cfg.ip: {"slave"}}
        with s.client() as c:
            assert c.sentinel_get_master_addr_by_name("mymaster") == (setup.master.cfg.ip, REDIS_PORT)


def test_sentinel_keeps_stale_replica_after_ip_change(
    sentinel_setup: Callable[..., Any], spawn: Spawn, ips: Ips
) -> None:
    """The production problem: a replica pod rescheduled on a new IP leaves a stale entry."""
    setup = sentinel_setup(1, down_after_ms=1000)
    (sentinel,) = setup.sentinels
    old_ip = setup.replica.cfg.ip
    assert wait_until(lambda: _replicas(sentinel) == {old_ip: {"slave"}}, 10)

    (new_ip,) = ips(1)
    setup.replica.stop(grace_s=10)
    t0 = time.monotonic()
    spawn(dataclasses.replace(setup.replica.cfg, ip=new_ip))

    def stale_alongside_new() -> bool:
        reps = _replicas(sentinel)
        return (
            reps.get(new_ip) == {"slave"}  # discovered from the master's INFO and connected
            and "s_down" in reps.get(old_ip, set())
            and "disconnected" in reps[old_ip]
        )

    # The master's INFO is polled every 10 s, so the new address takes up to ~10 s to appear.
    assert wait_until(stale_alongside_new, 15, 0.2), _replicas(sentinel)
    log.info("new replica listed and old one stale %.2fs after the restart", time.monotonic() - t0)
    assert _sentinel_master(sentinel)["num-slaves"] == 2


def _shards(nodes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """master id -> ids of its replicas."""
    masters = {n["id"]: [] for n in nodes if "master" in n["flags"]}
    for n in nodes:
        if "slave" in n["flags"]:
            masters[n["master_id"]].append(n["id"])
    return masters


def test_cluster_create_six_nodes(redis_cluster: tuple[list[RedisProcess], ClusterLayout]) -> None:
    procs, layout = redis_cluster
    ids = {p.cfg.address: layout.node_ids[p.cfg.address] for p in procs}
    assert layout.masters == [p.cfg.address for p in procs[:3]]
    assert layout.replica_of == {procs[3 + k].cfg.address: procs[k].cfg.address for k in range(3)}
    for p in procs:
        ci = cluster_info(*p.cfg.address)
        assert ci["cluster_state"] == "ok"
        assert ci["cluster_slots_assigned"] == ci["cluster_slots_ok"] == "16384"
        assert ci["cluster_known_nodes"] == "6"
        nodes = [dict(n) for n in cluster_nodes(*p.cfg.address)]
        shards = _shards(nodes)
        assert shards == {ids[procs[k].cfg.address]: [ids[procs[3 + k].cfg.address]] for k in range(3)}
        covered = sorted(r for n in nodes for r in n["slots"])
        assert covered == [(0, 5460), (5461, 10922), (10923, 16383)]
    with redis.RedisCluster(host=procs[0].cfg.ip, port=REDIS_PORT, decode_responses=True) as rc:
        rc.mset_nonatomic({f"k{i}": i for i in range(300)})
        assert rc.mget_nonatomic([f"k{i}" for i in range(300)]) == [str(i) for i in range(300)]


def test_cluster_node_restarted_on_new_ip_keeps_identity(
    redis_cluster: tuple[list[RedisProcess], ClusterLayout], spawn: Spawn, ips: Ips
) -> None:
    procs, layout = redis_cluster
    master = procs[0]
    node_id = layout.node_ids[master.cfg.address]
    old_ip = master.cfg.ip
    (new_ip,) = ips(1)
    with redis.RedisCluster(host=procs[1].cfg.ip, port=REDIS_PORT, decode_responses=True) as rc:
        rc.mset_nonatomic({f"k{i}": i for i in range(300)})
    keys_on_master = master.client().dbsize()
    assert keys_on_master > 0

    master.stop(grace_s=10)
    t0 = time.monotonic()
    moved = spawn(dataclasses.replace(master.cfg, ip=new_ip))  # same nodes.conf and dump.rdb
    with moved.client() as c:
        assert c.execute_command("CLUSTER", "MYID") == node_id
        assert c.dbsize() == keys_on_master

    def peers_see_new_ip() -> bool:
        for p in procs[1:]:
            entry = next(n for n in cluster_nodes(*p.cfg.address) if n["id"] == node_id)
            if entry["ip"] != new_ip or entry["flags"] & {"fail", "fail?", "handshake"}:
                return False
        return True

    assert wait_until(peers_see_new_ip, 10)
    log.info("all peers mapped node %s to %s after %.3fs", node_id[:8], new_ip, time.monotonic() - t0)
    assert wait_until(
        lambda: all(cluster_info(*p.cfg.address)["cluster_state"] == "ok" for p in procs[1:]), 10
    )
    assert wait_until(lambda: cluster_info(new_ip, REDIS_PORT)["cluster_state"] == "ok", 10)
    myself = next(n for n in cluster_nodes(new_ip, REDIS_PORT) if "myself" in n["flags"])
    # Without cluster-announce-ip the node's own view may keep the old IP (redis/redis#4645).
    log.info("restarted node's own view: %s (old %s)", myself["ip"], old_ip)
    assert "master" in myself["flags"] and myself["slots"] == [(0, 5460)]

    # With cluster-announce-ip the restarted node's own view is right too.
    replica = procs[4]
    replica_id = layout.node_ids[replica.cfg.address]
    (replica_ip,) = ips(1)
    replica.stop(grace_s=10)
    spawn(dataclasses.replace(replica.cfg, ip=replica_ip, announce_ip=replica_ip))
    assert wait_until(
        lambda: all(
            {n["id"]: n["ip"] for n in cluster_nodes(*addr)}[replica_id] == replica_ip
            for addr in [procs[k].cfg.address for k in (1, 2, 3, 5)]
            + [(replica_ip, REDIS_PORT), (new_ip, REDIS_PORT)]
        ),
        10,
    )
