"""Redis Cluster pods respect the user's PodDisruptionBudgets: the procedure evicts them (the
field-report scenario puts a maxUnavailable 1 PDB on each zone's StatefulSet), waits while a PDB
refuses, and stops naming it past the phase's deadline. Only the temporary pod, ours and under
no user's PDB, is deleted. Real redis-server nodes, MoveRedisPods driven round by round."""

from __future__ import annotations

import pytest

from eks_rolling.errors import DrainTimeoutError
from eks_rolling.models import MoveRedisPodsInput
from eks_rolling.services.redis import move_redis_pods
from tests.factories.redis_cluster import NS, ClusterField, requires
from tests.factories.redis_sentinel import private_node_indices, wait_for

pytestmark = [*requires, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def _private_ips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the `cluster` fixture: node IPs no other session's cluster could gossip with."""
    private_node_indices(monkeypatch)


def _set_max_unavailable(f: ClusterField, pdb: str, value: int) -> None:
    with f.env.applied(**f.settings):
        kube = f.deps().kube(f.env.cluster_name)
        kube.policy.patch_namespaced_pod_disruption_budget(pdb, NS, {"spec": {"maxUnavailable": value}})

    def settled() -> bool:
        obj = f.env.sandbox.store.get("poddisruptionbudgets", NS, pdb)
        assert obj is not None
        st = obj.get("status") or {}
        return bool(
            st.get("observedGeneration") == obj["metadata"].get("generation")
            and st.get("disruptionsAllowed") == min(value, st.get("currentHealthy", 0))
        )

    wait_for(settled, 10, f"PDB {pdb} at maxUnavailable {value}")


def _pod_writes(f: ClusterField, since: float) -> list[tuple[str, str, int]]:
    """(method, pod[/subresource], status) of every pod write but annotations."""
    return [
        (e.method, e.path.split("/pods/")[1], e.status)
        for e in f.env.sandbox.request_log.entries(since)
        if e.is_write and f"/namespaces/{NS}/pods/" in e.path and e.method != "PATCH"
    ]


def test_a_master_leaves_through_one_eviction_and_only_the_temporary_pod_is_deleted(
    cluster: ClusterField,
) -> None:
    master = cluster.master_pod(0)
    sts = master.rsplit("-", 1)[0]
    pdb = cluster.env.sandbox.store.get("poddisruptionbudgets", NS, sts)
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1  # the scenario's PDB
    mark = cluster.env.sandbox.request_log.mark()
    # When the master's node is moved
    out, _ = cluster.drive(cluster.target(master))
    # Then the master left through one accepted eviction, the temporary pod by DELETE, nothing else
    assert out.done
    writes = _pod_writes(cluster, mark)
    assert [w for w in writes if w[0] != "POST" or not w[1].endswith("/eviction")] == [
        ("DELETE", f"{master}-eksr-tmp", 200)
    ], writes
    assert [w for w in writes if w[1].endswith("/eviction")] == [("POST", f"{master}/eviction", 201)]
    cluster.assert_consistent(masters=cluster.layout["slots"])


def test_a_replica_waits_for_its_pdb_then_fails_naming_it_and_moves_once_it_allows(
    cluster: ClusterField,
) -> None:
    replica = sorted(cluster.layout["replica_of"])[0]
    sts = replica.rsplit("-", 1)[0]
    uid = cluster.pod(replica)["metadata"]["uid"]
    # Given its StatefulSet's PDB allows no disruption and a 5 s phase deadline
    _set_max_unavailable(cluster, sts, 0)
    cluster.settings["redis_phase_timeout_s"] = "5"
    mark = cluster.env.sandbox.request_log.mark()
    # When MoveRedisPods runs for its node: each refusal backs off as the drain does
    out = None
    waits = []
    with cluster.env.applied(**cluster.settings):
        for _ in range(2):
            inp = MoveRedisPodsInput(ctx=cluster.ctx, node=cluster.target(replica), redis=out)
            out = move_redis_pods(inp, cluster.deps())
            waits.append(out.next_wait_s)
    assert out is not None and out.moves[0].data["throttled"] == 2, out
    assert 3 <= waits[0] <= 5 and 5 <= waits[1] <= 10, waits
    with pytest.raises(DrainTimeoutError) as failed:
        cluster.drive(cluster.target(replica), timeout=60, start=out)
    # Then it waited on the 429s and, past the deadline, stopped naming the pod and the PDB
    assert f"Redis Cluster pod {NS}/{replica}: phase start did not complete" in str(failed.value)
    assert f"PodDisruptionBudget {NS}/{sts}" in str(failed.value)
    writes = _pod_writes(cluster, mark)
    assert len(writes) >= 2 and set(writes) == {("POST", f"{replica}/eviction", 429)}, writes
    assert cluster.pod(replica)["metadata"]["uid"] == uid
    # When the PDB allows one disruption again and the move runs
    _set_max_unavailable(cluster, sts, 1)
    cluster.settings["redis_phase_timeout_s"] = "60"
    mark = cluster.env.sandbox.request_log.mark()
    out, actions = cluster.drive(cluster.target(replica))
    # Then the replica left through one accepted eviction and is back, the cluster whole
    assert out.done and _pod_writes(cluster, mark) == [("POST", f"{replica}/eviction", 201)]
    assert any(f"evicted the pod (uid {uid})" in a for a in actions), actions
    cluster.assert_consistent(masters=cluster.layout["slots"])
