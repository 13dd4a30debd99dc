"""Redis Cluster moves that fail, and the cleanup that Rollback runs with nothing but the run's
context: the temporary node leaves the cluster only once it holds no slot, the original master
takes its slots back when it is a synced replica, and no slot is ever left uncovered.

Consistency argument (docstring of the services/redis/cluster package): slots change hands only
through default manual failovers (no acknowledged write lost); the temporary node is forgotten,
on every node at once, only when it holds no slot and nobody replicates it; while the original
cannot take its slots back, the temporary node stays master rather than uncover them."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from eks_rolling.errors import RedisMoveTimeoutError
from eks_rolling.labels import REDIS_PORT
from eks_rolling_sandbox.redis import procs as redis_procs
from tests.factories.fault_matrix import FaultRow
from tests.factories.redis_cluster import NS, ClusterField, requires

pytestmark = [*requires, pytest.mark.timeout(240)]


def _temp_of(cluster: ClusterField, master: str) -> dict[str, object] | None:
    return next((p for p in cluster.temp_pods() if p["metadata"]["name"] == f"{master}-eksr-tmp"), None)


def _refuse_replication(cluster: ClusterField, master: str, stop: threading.Event) -> None:
    """The temporary node cannot authenticate to its master (a wrong masterauth): its sync link
    never comes up; a link that did come up is cut."""
    while not stop.is_set():
        temp = _temp_of(cluster, master)
        ip = (temp or {}).get("status", {}).get("podIP") if temp else None  # type: ignore[union-attr]
        if ip:
            try:
                with redis_procs.admin_client(str(ip), REDIS_PORT, None, timeout_s=0.3) as r:
                    r.execute_command("CONFIG", "SET", "masterauth", "not-the-password")
                    if r.info("replication").get("master_link_status") == "up":
                        r.execute_command("CLIENT", "KILL", "TYPE", "master")
            except (redis.RedisError, OSError):
                pass
        time.sleep(0.02)


def _temp_forgotten(cluster: ClusterField, temp_id: str) -> None:
    for name in cluster.members():
        assert temp_id not in {n["id"] for n in cluster.nodes_view(name)}, name


@pytest.mark.fault("F9")
def test_a_temporary_node_that_never_syncs_is_removed_and_the_master_stays(
    cluster: ClusterField, fault_row: FaultRow
) -> None:
    # Long enough for the temporary pod to start on a loaded 2-core machine (12 s was not, once)
    cluster.settings["redis_phase_timeout_s"] = "30"
    master = cluster.master_pod(0)
    uid = cluster.pod(master)["metadata"]["uid"]
    writer = cluster.writer()
    stop = threading.Event()
    saboteur = threading.Thread(target=_refuse_replication, args=(cluster, master, stop), daemon=True)
    saboteur.start()
    try:
        # When the temporary node never gets its data
        with pytest.raises(RedisMoveTimeoutError) as err:
            cluster.drive(cluster.target(master))
    finally:
        stop.set()
        saboteur.join(5)
    # Then the move fails with a named error naming the pod and the phase, after removing it
    msg = str(err.value)
    assert f"{NS}/{master}: phase temp_sync did not complete" in msg and "not synced" in msg
    assert "CLUSTER FORGET" in msg and "deleted temporary pod" in msg
    temp_id = next(
        iter({n["id"] for n in cluster.nodes_view(master)} - set(cluster.layout["node_ids"].values())), None
    )
    assert temp_id is None, "forgotten by every node"
    cluster.env.sandbox.wait_for(lambda: _temp_of(cluster, master) is None, timeout=30, what="temp pod gone")
    # ... the master never moved and still serves its slots; the cluster is whole
    assert cluster.pod(master)["metadata"]["uid"] == uid
    cluster.assert_consistent(masters=cluster.layout["slots"])
    lost = cluster.lost(writer)
    fault_row.injected = "the temporary node's replication refused (CLIENT KILL TYPE master)"
    fault_row.outcome, fault_row.error = "stopped with a named error", type(err.value).__name__
    fault_row.lost_writes = lost
    assert lost == 0
    # ... and Rollback's cleanup finds nothing left to do
    assert [n for n in cluster.cleanup() if "released the lock" not in n] == []
    fault_row.restored = True


def test_cleanup_after_the_first_failover_fails_back_and_forgets_the_temporary_node(
    cluster: ClusterField,
) -> None:
    master = cluster.master_pod(1)
    writer = cluster.writer()
    # Given a move that got past its first failover (the temporary node is master, the original
    # pod was deleted) when the execution failed elsewhere
    out, _ = cluster.drive(cluster.target(master), until_phase="a_restart")
    temp_id = out.moves[0].data["temp_id"]
    own = next(n for n in cluster.nodes_view(cluster.members()[0]) if n["id"] == temp_id)
    assert "master" in own["flags"] and own["slots"] == [tuple(cluster.layout["slots"][master])]
    # When Rollback cleans up with the run's context alone
    notes = cluster.cleanup()
    # Then the original took its slots back once synced, the temporary node is forgotten on every
    # node and deleted, every node id and IP is right, and no acknowledged write was lost
    assert any(f"CLUSTER FAILOVER on {master}" in n for n in notes), notes
    assert any("CLUSTER FORGET" in n and "on 6 nodes" in n for n in notes), notes
    cluster.env.sandbox.wait_for(lambda: _temp_of(cluster, master) is None, timeout=30, what="temp pod gone")
    _temp_forgotten(cluster, temp_id)
    cluster.assert_consistent(masters=cluster.layout["slots"])
    assert cluster.lost(writer) == 0
    assert [n for n in cluster.cleanup() if "released the lock" not in n] == []


def test_cleanup_keeps_the_temporary_master_while_the_original_cannot_take_its_slots_back(
    cluster: ClusterField,
) -> None:
    cluster.settings["redis_cleanup_wait_s"] = "3"
    master = cluster.master_pod(0)
    zone_nodes = cluster.new_nodes(cluster.layout["zones"][master])
    target = cluster.target(master)
    out, _ = cluster.drive(target, until_phase="failover_to_temp")
    # Given the original pod cannot come back (its zone is full) once it is deleted
    cluster.taint(zone_nodes, "sandbox.test/full")
    out, _ = cluster.drive(target, start=out, until_phase="a_restart")
    temp_id = out.moves[0].data["temp_id"]
    store = cluster.env.sandbox.store
    # (between the delete and its StatefulSet's recreation the pod does not exist at all)
    cluster.env.sandbox.wait_for(
        lambda: ((store.get("pods", NS, master) or {}).get("status") or {}).get("phase") == "Pending",
        timeout=30,
        what=f"{master} recreated and Pending",
    )
    # When Rollback cleans up
    notes = cluster.cleanup()
    # Then it keeps the temporary node as master of those slots rather than uncover them, says so,
    # and the plan of a next run is blocked on it
    assert any("KEPT temporary pod" in n and "uncover those slots" in n for n in notes), notes
    assert _temp_of(cluster, master) is not None
    others = [m for m in cluster.members() if m != master]
    for name in others:
        info = redis_procs.cluster_info(cluster.ip(name), REDIS_PORT)
        assert info["cluster_state"] == "ok" and info["cluster_slots_ok"] == "16384"
        holder = next(n for n in cluster.nodes_view(name) if n["id"] == temp_id)
        assert "master" in holder["flags"] and holder["slots"] == [tuple(cluster.layout["slots"][master])]
    assert any("temporary pod" in p and "still there" in p for p in cluster.health().problems)
    # When the zone has room again: the original rejoins as the temporary node's replica, and the
    # next cleanup fails back and removes the temporary node
    cluster.taint(zone_nodes, "sandbox.test/full", remove=True)
    cluster.settings["redis_cleanup_wait_s"] = "60"
    notes = cluster.cleanup()
    assert any(f"CLUSTER FAILOVER on {master}" in n for n in notes) and any(
        "CLUSTER FORGET" in n for n in notes
    ), notes
    cluster.env.sandbox.wait_for(lambda: _temp_of(cluster, master) is None, timeout=30, what="temp pod gone")
    _temp_forgotten(cluster, temp_id)
    cluster.assert_consistent(masters=cluster.layout["slots"])
    assert cluster.health().problems == []
