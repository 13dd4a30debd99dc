"""A Redis Sentinel group on the sandbox reproduces the production facts of the field report.

Given master/replica/sentinel StatefulSets on nodes in two zones (master in a, replicas in b),
real redis-server processes bound to pod IPs, and the official Kubernetes client to delete pods.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import pytest
import redis

from eks_rolling.labels import (
    REDIS_GROUP,
    REDIS_KIND,
    REDIS_PASSWORD_SECRET,
    REDIS_PORT,
    REDIS_ROLE,
    REDIS_SENTINEL_STATEFULSET,
    SENTINEL_PORT,
)
from eks_rolling_sandbox.api.objects import pod_is_ready
from eks_rolling_sandbox.redis import procs as redis_procs
from eks_rolling_sandbox.redis.manifests import sentinel_group
from eks_rolling_sandbox.redis.runtime import read_secret
from tests.factories.redis import (
    ZONE_A,
    ZONE_B,
    RedisSandbox,
    leftover_processes,
    rclient,
    requires_redis,
    sentinel_master_addr,
    sentinel_peers,
    sentinel_replicas,
    wait_until,
)

pytestmark = [requires_redis, pytest.mark.timeout(120)]
log = logging.getLogger(__name__)

NS = "redis"
MASTER = "redis-master-0"
REPLICAS = ["redis-replica-0", "redis-replica-1"]
SENTINELS = ["redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2"]
# Sentinel polls INFO every 10 s: a new replica is listed within ~10 s (s_down comes 5 s after the
# old one disconnects); the margin is for a loaded 2-core machine.
DISCOVERY_S = 20


class Group:
    """The running group: pod IPs and the password, read back from the sandbox."""

    def __init__(self, env: RedisSandbox) -> None:
        self.env = env
        self.password = read_secret(env.store, NS, "redis-auth", "redis-password")
        assert self.password

    def ip(self, pod: str) -> str:
        p = self.env.pod(NS, pod)
        assert p is not None
        return str(p["status"]["podIP"])

    def sentinel_ips(self) -> list[str]:
        return [self.ip(s) for s in SENTINELS]

    def info(self, pod_or_ip: str, section: str = "replication") -> dict[str, Any]:
        ip = pod_or_ip if pod_or_ip[0].isdigit() else self.ip(pod_or_ip)
        return redis_procs.info(ip, REDIS_PORT, section, self.password)

    def client(self, pod: str) -> Any:
        return rclient(self.ip(pod), password=self.password)

    def sentinels_know(self, master_ip: str, replica_ips: set[str]) -> bool:
        """Every sentinel names `master_ip` and lists `replica_ips` as healthy replicas."""
        for s in self.sentinel_ips():
            if sentinel_master_addr(s) != master_ip:
                return False
            healthy = {ip for ip, flags in sentinel_replicas(s).items() if flags == {"slave"}}
            if not replica_ips <= healthy:
                return False
        return True


def start_group(make: Any) -> Group:
    """Given 2 nodes in zone a (master) and 3 in zone b (2 replicas + a spare), the group is up."""
    env: RedisSandbox = make({ZONE_A: 2, ZONE_B: 3})
    env.apply(sentinel_group(master_zone=ZONE_A, replica_zone=ZONE_B))
    env.wait_ready(NS, [MASTER, *REPLICAS, *SENTINELS], timeout=30)
    group = Group(env)
    replica_ips = {group.ip(r) for r in REPLICAS}
    wait_until(
        lambda: group.sentinels_know(group.ip(MASTER), replica_ips),
        DISCOVERY_S,
        "sentinels to agree on the master and list both replicas",
    )
    return group


def test_sentinel_group_comes_up(redis_sandbox: Any) -> None:
    group = start_group(redis_sandbox)
    env = group.env
    master_ip = group.ip(MASTER)

    # master + replicas synced
    assert group.info(MASTER)["role"] == "master"
    assert group.info(MASTER)["connected_slaves"] == 2
    for r in REPLICAS:
        rep = group.info(r)
        assert rep["role"] == "slave" and rep["master_host"] == master_ip
        wait_until(
            lambda r=r: redis_procs.replica_synced(
                (group.ip(r), REDIS_PORT), (master_ip, REDIS_PORT), group.password
            ),
            5,
            f"{r} synced",
        )
        assert env.zone_of(env.pod(NS, r)["spec"]["nodeName"]) == ZONE_B
    assert env.zone_of(env.pod(NS, MASTER)["spec"]["nodeName"]) == ZONE_A
    data_nodes = {env.pod(NS, p)["spec"]["nodeName"] for p in [MASTER, *REPLICAS]}
    assert len(data_nodes) == 3, "required anti-affinity keeps data pods on distinct nodes"

    # 3 sentinels agree on the master and reach quorum
    for s in group.sentinel_ips():
        with rclient(s, SENTINEL_PORT) as r:
            assert r.execute_command("SENTINEL", "CKQUORUM", "mymaster").startswith("OK 3 usable")
            state = r.sentinel_master("mymaster")
        assert state["ip"] == master_ip and state["num-other-sentinels"] == 2

    # data lives on the PV's directory; sentinels have an ephemeral one
    master_pod = env.pod(NS, MASTER)
    proc = env.runtime.process(master_pod["metadata"]["uid"])
    pvc = env.store.get("persistentvolumeclaims", NS, "data-redis-master-0")
    assert proc is not None and proc.cfg.data_dir == env.root / "volumes" / pvc["spec"]["volumeName"]
    sentinel_proc = env.runtime.process(env.pod(NS, SENTINELS[0])["metadata"]["uid"])
    assert sentinel_proc is not None and sentinel_proc.cfg.data_dir.parent == env.root / "ephemeral"

    # the opt-in metadata eks-rolling reads
    for sts, role in (
        ("redis-master", "master"),
        ("redis-replica", "replica"),
        ("redis-sentinel", "sentinel"),
    ):
        ann = env.store.get("statefulsets", NS, sts)["metadata"]["annotations"]
        assert ann[REDIS_GROUP] == "redis" and ann[REDIS_KIND] == "sentinel"
        assert ann[REDIS_ROLE] == role and ann[REDIS_SENTINEL_STATEFULSET] == "redis-sentinel"
        assert ann[REDIS_PASSWORD_SECRET] == "redis-auth/redis-password"


def test_replica_moved_to_another_node_leaves_stale_sentinel_entry(redis_sandbox: Any) -> None:
    group = start_group(redis_sandbox)
    env = group.env
    master_ip = group.ip(MASTER)
    victim = REPLICAS[1]
    with group.client(MASTER) as m:
        pipe = m.pipeline(transaction=False)
        for i in range(2000):
            pipe.set(f"k:{i}", i)
        pipe.execute()
    old = env.pod(NS, victim)
    old_ip, old_node, old_uid = old["status"]["podIP"], old["spec"]["nodeName"], old["metadata"]["uid"]
    wait_until(
        lambda: redis_procs.replica_synced((old_ip, REDIS_PORT), (master_ip, REDIS_PORT), group.password),
        5,
        "synced",
    )
    stats = group.info(MASTER, "stats")

    # When: its node is tainted and the pod deleted (official client)
    env.taint(old_node)
    t0 = time.monotonic()
    env.core.delete_namespaced_pod(victim, NS)
    new = env.wait_replaced(NS, victim, old_uid)
    back_s = time.monotonic() - t0

    # Then: same name, new UID, another node in the same zone, a new IP, and its data
    new_ip = new["status"]["podIP"]
    assert new["spec"]["nodeName"] != old_node and env.zone_of(new["spec"]["nodeName"]) == ZONE_B
    assert new_ip != old_ip
    sync_s = wait_until(
        lambda: redis_procs.replica_synced((new_ip, REDIS_PORT), (master_ip, REDIS_PORT), group.password),
        10,
        "resync",
    )
    with rclient(new_ip, password=group.password) as r:
        assert r.dbsize() == 2000 and r.get("k:1999") == "1999"
    after = group.info(MASTER, "stats")
    assert after["sync_partial_ok"] == stats["sync_partial_ok"] + 1, "partial resync (RDB kept repl id)"
    assert after["sync_full"] == stats["sync_full"], "no full resync"

    # Sentinel lists the new IP and keeps the old one as a stale s_down entry (the production bug)
    def stale_and_new() -> bool:
        for s in group.sentinel_ips():
            listed = sentinel_replicas(s)
            if listed.get(new_ip) != {"slave"} or "s_down" not in listed.get(old_ip, set()):
                return False
        return True

    seen_s = wait_until(stale_and_new, DISCOVERY_S, "sentinels to list the new replica and flag the old IP")
    flags = sentinel_replicas(group.sentinel_ips()[0])
    assert len(flags) == 3  # 2 live replicas + the stale entry

    # The field report's remedy: a restarted sentinel (new pod, new IP, fresh config) forgets the
    # stale entry; its stable myid makes it an address switch for its peers, not a 4th sentinel.
    s0 = env.pod(NS, SENTINELS[0])
    env.core.delete_namespaced_pod(SENTINELS[0], NS)
    env.wait_replaced(NS, SENTINELS[0], s0["metadata"]["uid"])
    live = {new_ip, group.ip(REPLICAS[0])}

    def sentinels_clean() -> bool:
        if sentinel_replicas(group.ip(SENTINELS[0])) != {ip: {"slave"} for ip in live}:
            return False
        ips = group.sentinel_ips()
        for s in ips:
            # exactly the two live peers, the restarted one at its new IP: no stale 4th sentinel
            if sentinel_peers(s) != {ip: {"sentinel"} for ip in ips if ip != s}:
                return False
            with rclient(s, SENTINEL_PORT) as r:
                if not r.execute_command("SENTINEL", "CKQUORUM", "mymaster").startswith("OK 3 usable"):
                    return False
        return True

    refresh_s = wait_until(sentinels_clean, DISCOVERY_S, "restarted sentinel without the stale entry")
    assert group.ip(SENTINELS[0]) != s0["status"]["podIP"]
    assert old_ip in sentinel_replicas(group.ip(SENTINELS[1])), "not restarted: still stale"
    log.warning(
        "replica move: back Ready in %.2fs, synced %.2fs later, sentinels converged %.2fs later; "
        "stale flags %s; restarted sentinel clean %.2fs after Ready",
        back_s,
        sync_s,
        seen_s,
        sorted(flags[old_ip]),
        refresh_s,
    )


def test_ex_master_comes_back_as_replica_of_current_master(redis_sandbox: Any) -> None:
    group = start_group(redis_sandbox)
    env = group.env
    old_master_ip = group.ip(MASTER)
    with group.client(MASTER) as m:
        m.set("before-failover", "1")
    stats = {r: group.info(r, "stats") for r in REPLICAS}

    # Given a manual failover through ONE sentinel, agreed by all three
    with rclient(group.sentinel_ips()[0], SENTINEL_PORT) as s:
        assert s.execute_command("SENTINEL", "FAILOVER", "mymaster")

    def new_master() -> str | None:
        addrs = {sentinel_master_addr(s) for s in group.sentinel_ips()}
        if len(addrs) == 1 and old_master_ip not in addrs:
            ip = addrs.pop()
            return (
                ip
                if redis_procs.info(ip, REDIS_PORT, "replication", group.password)["role"] == "master"
                else None
            )
        return None

    failover_s = wait_until(new_master, 15, "all sentinels to agree on a new master")
    promoted_ip = new_master()
    assert promoted_ip in {group.ip(r) for r in REPLICAS}
    promoted = next(r for r in REPLICAS if group.ip(r) == promoted_ip)
    at_failover = group.info(promoted, "stats")

    # When the ex-master pod is deleted (node tainted) and comes back on another node
    old = env.pod(NS, MASTER)
    env.taint(old["spec"]["nodeName"])
    env.core.delete_namespaced_pod(MASTER, NS)
    roles: list[str] = []

    def answering_ip() -> str | None:
        p = env.pod(NS, MASTER)
        if p is None or p["metadata"]["uid"] == old["metadata"]["uid"] or not p["status"].get("podIP"):
            return None
        with rclient(p["status"]["podIP"], password=group.password, timeout=0.3) as r:
            roles.append(r.info("replication")["role"])
        return str(p["status"]["podIP"])

    wait_until(answering_ip, 30, "the recreated ex-master to answer", interval=0.01)
    new_ip = answering_ip()
    assert new_ip is not None and new_ip != old_master_ip
    new = env.wait_replaced(NS, MASTER, old["metadata"]["uid"])
    assert (
        new["spec"]["nodeName"] != old["spec"]["nodeName"] and env.zone_of(new["spec"]["nodeName"]) == ZONE_A
    )

    # Then it is a replica of the current master from its first reply on: never a second master
    sync_s = wait_until(
        lambda: redis_procs.replica_synced((new_ip, REDIS_PORT), (promoted_ip, REDIS_PORT), group.password),
        10,
        "ex-master synced from the new master",
    )
    roles.append(group.info(new_ip)["role"])
    assert set(roles) == {"slave"}, roles
    assert group.info(new_ip)["master_host"] == promoted_ip
    masters = [ip for ip in (new_ip, *(group.ip(r) for r in REPLICAS)) if group.info(ip)["role"] == "master"]
    assert masters == [promoted_ip]
    with rclient(new_ip, password=group.password) as r:
        assert r.get("before-failover") == "1"
    resync = group.info(promoted, "stats")
    log.warning(
        "failover agreed in %.2fs; ex-master synced %.2fs after answering; new master's "
        "sync_partial_ok/sync_full: before failover %d/%d, once agreed %d/%d, after ex-master %d/%d",
        failover_s,
        sync_s,
        stats[promoted]["sync_partial_ok"],
        stats[promoted]["sync_full"],
        at_failover["sync_partial_ok"],
        at_failover["sync_full"],
        resync["sync_partial_ok"],
        resync["sync_full"],
    )


def test_stop_leaves_no_redis_server_behind(redis_sandbox: Any) -> None:
    env: RedisSandbox = redis_sandbox({ZONE_A: 1, ZONE_B: 1})
    env.apply(sentinel_group(replicas=1, sentinels=1, quorum=1, password_secret=None, anti_affinity=False))
    env.wait_ready(NS, [MASTER, "redis-replica-0", "redis-sentinel-0"])
    assert len(env.runtime.running_uids()) == 3
    assert len(leftover_processes(env)) == 3 * 2  # registry + pgrep view of each process

    env.stop()

    assert leftover_processes(env) == []
    assert env.runtime.running_uids() == set()


def test_pods_wait_for_the_master_endpoint_and_restart_in_place(redis_sandbox: Any) -> None:
    env: RedisSandbox = redis_sandbox({ZONE_A: 1, ZONE_B: 1})
    manifests = sentinel_group(replicas=1, sentinels=1, quorum=1, sentinel_auth=True, anti_affinity=False)
    master_sts = next(
        m for m in manifests if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "redis-master"
    )
    # Given everything but the master StatefulSet: replica and sentinel cannot resolve redis-master
    env.apply([m for m in manifests if m is not master_sts])
    waiting = ["redis-replica-0", "redis-sentinel-0"]

    def all_waiting() -> bool:
        pods = [env.pod(NS, n) for n in waiting]
        return all(
            p is not None
            and p["status"].get("phase") == "Running"
            and env.runtime.waiting_reason(p["metadata"]["uid"])
            == "service redis-master has no ready endpoint"
            for p in pods
        )

    wait_until(all_waiting, 10, "replica and sentinel Running, waiting for the master endpoint")
    assert env.runtime.running_uids() == set()
    assert not any(pod_is_ready(env.pod(NS, n)) for n in waiting)

    # When the master appears, both start without any help
    env.apply([master_sts])
    pods = env.wait_ready(NS, [MASTER, *waiting], timeout=15)
    group = Group(env)
    master_ip = group.ip(MASTER)
    assert group.info("redis-replica-0")["master_host"] == master_ip
    sentinel_ip = group.ip("redis-sentinel-0")
    with pytest.raises(redis.AuthenticationError):
        rclient(sentinel_ip, SENTINEL_PORT).ping()  # sentinel_auth: sentinels require the password too
    with rclient(sentinel_ip, SENTINEL_PORT, password=group.password) as s:
        assert s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[0] == master_ip

    # And a crashed container restarts in place: same pod, same IP, restartCount 1, replicating again
    replica = pods["redis-replica-0"]
    proc = env.runtime.process(replica["metadata"]["uid"])
    assert proc is not None and proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)

    def restarted() -> bool:
        p = env.pod(NS, "redis-replica-0")
        status = p["status"]["containerStatuses"][0]
        return bool(status["restartCount"] == 1 and pod_is_ready(p))

    wait_until(restarted, 10, "the replica container to restart in place")
    assert env.pod(NS, "redis-replica-0")["metadata"]["uid"] == replica["metadata"]["uid"]
    assert group.ip("redis-replica-0") == replica["status"]["podIP"]
    wait_until(lambda: group.info("redis-replica-0")["master_link_status"] == "up", 5, "link up")
