"""A Redis Cluster as one StatefulSet per zone on the sandbox: a moved pod keeps its identity.

Given 3 nodes per zone and a cluster created by the "init job" (each master's replica in the
other zone). A pod whose node is tainted and which is deleted comes back in its zone with its
nodes.conf: same node id, new IP, peers learn the new IP by node id. Without
``cluster-announce-ip`` its own ``myself`` entry keeps the old IP (redis/redis#4645): the tool
must fix that with ``CLUSTER MEET <new-ip>`` from a peer. With it, the self view is correct.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from redis.crc import key_slot

from eks_rolling.labels import REDIS_GROUP, REDIS_KIND, REDIS_PORT
from eks_rolling_sandbox.redis import procs as redis_procs
from eks_rolling_sandbox.redis.manifests import init_redis_cluster, redis_cluster
from eks_rolling_sandbox.redis.runtime import read_secret
from tests.factories.redis import (
    ZONE_A,
    ZONE_B,
    RedisSandbox,
    rclient,
    requires_redis,
    wait_until,
)

pytestmark = [requires_redis, pytest.mark.timeout(120)]
log = logging.getLogger(__name__)

NS = "redis"
NAME = "redis-cluster"
SECRET = "redis-cluster-auth"


def myself(ip: str, password: str | None) -> redis_procs.ClusterNodeInfo:
    return next(n for n in redis_procs.cluster_nodes(ip, REDIS_PORT, password) if "myself" in n["flags"])


@pytest.mark.parametrize("announce_ip", [False, True], ids=["announce-off", "announce-on"])
def test_cluster_pod_moves_within_its_zone_and_keeps_its_node_id(
    redis_sandbox: Any, announce_ip: bool
) -> None:
    env: RedisSandbox = redis_sandbox({ZONE_A: 3, ZONE_B: 3})
    env.apply(redis_cluster(password_secret=SECRET, announce_ip=announce_ip))
    password = read_secret(env.store, NS, SECRET, "redis-password")
    layout = init_redis_cluster(env.sandbox, NS, NAME, timeout_s=60)

    # The cluster is up: 3 masters cover the 16384 slots, each replica in the other zone
    ips: dict[str, str] = layout["ips"]
    assert len(layout["masters"]) == 3 and len(ips) == 6
    assert sum(last - first + 1 for first, last in layout["slots"].values()) == 16384
    for replica, master in layout["replica_of"].items():
        assert layout["zones"][replica] != layout["zones"][master]
    for ip in ips.values():
        info = redis_procs.cluster_info(ip, REDIS_PORT, password)
        assert info["cluster_state"] == "ok" and info["cluster_slots_ok"] == "16384"
        assert info["cluster_size"] == "3"
    for sts in (f"{NAME}-a", f"{NAME}-b"):
        ann = env.store.get("statefulsets", NS, sts)["metadata"]["annotations"]
        assert ann[REDIS_GROUP] == NAME and ann[REDIS_KIND] == "cluster"
    mover = layout["masters"][0]
    first, last = layout["slots"][mover]
    with rclient(ips[mover], password=password) as r:
        keys = [k for k in (f"k{i}" for i in range(2000)) if first <= key_slot(k.encode()) <= last][:100]
        for k in keys:
            r.set(k, k)
    node_id = layout["node_ids"][mover]
    old = env.pod(NS, mover)
    old_ip, old_node, zone = old["status"]["podIP"], old["spec"]["nodeName"], layout["zones"][mover]
    pvc = env.store.get("persistentvolumeclaims", NS, f"data-{mover}")
    nodes_conf = env.root / "volumes" / pvc["spec"]["volumeName"] / "nodes.conf"
    assert node_id in nodes_conf.read_text()

    # When its node is tainted and the pod deleted
    env.taint(old_node)
    t0 = time.monotonic()
    env.core.delete_namespaced_pod(mover, NS)
    new = env.wait_replaced(NS, mover, old["metadata"]["uid"])
    back_s = time.monotonic() - t0
    new_ip = new["status"]["podIP"]

    # Then: another node of the same zone, a new IP, the same node id (nodes.conf on the volume)
    assert new["spec"]["nodeName"] != old_node and env.zone_of(new["spec"]["nodeName"]) == zone
    assert new_ip != old_ip
    with rclient(new_ip, password=password) as r:
        assert r.execute_command("CLUSTER", "MYID") == node_id
        assert r.dbsize() == len(keys) == 100

    # Peers re-map the node id to the new IP
    peers = [ip for name, ip in ips.items() if name != mover]

    def peers_see_new_ip() -> bool:
        for ip in peers:
            entry = next(n for n in redis_procs.cluster_nodes(ip, REDIS_PORT, password) if n["id"] == node_id)
            if entry["ip"] != new_ip or entry["flags"] & {"fail", "fail?", "handshake", "noaddr"}:
                return False
        return True

    peers_s = wait_until(peers_see_new_ip, 10, "peers to map the node id to the new IP")
    wait_until(
        lambda: all(
            redis_procs.cluster_info(ip, REDIS_PORT, password)["cluster_state"] == "ok"
            for ip in [*peers, new_ip]
        ),
        10,
        "cluster_state:ok everywhere",
    )

    # Its own view: stale without cluster-announce-ip (redis/redis#4645), right with it
    own = myself(new_ip, password)
    if announce_ip:
        assert own["ip"] == new_ip
    else:
        assert own["ip"] == old_ip, "redis#4645: the moved node still announces its old IP to itself"
        # The fix the tool applies: a MEET from any peer makes it learn its own address.
        with rclient(peers[0], password=password) as r:
            r.execute_command("CLUSTER", "MEET", new_ip, REDIS_PORT)
        wait_until(lambda: myself(new_ip, password)["ip"] == new_ip, 5, "MEET to fix the self view")
    roles = {n["id"]: n["flags"] for n in redis_procs.cluster_nodes(peers[0], REDIS_PORT, password)}
    log.warning(
        "cluster move (announce_ip=%s): back Ready in %.2fs, peers updated %.2fs later, mover flags now %s",
        announce_ip,
        back_s,
        peers_s,
        sorted(roles[node_id] - {"myself"}),
    )
