"""The slot-coverage check the demo and the Redis Cluster e2e tests rely on
(cluster_report.uncovered) honours cluster-bus link state: a master killed a moment ago, not yet
flagged fail? or fail by its peers, no longer covers its slots. Before, it counted as covering
them for the whole cluster-node-timeout, so a roll could kill a master unseen."""

from __future__ import annotations

import pytest

from eks_rolling_sandbox.cluster_report import uncovered
from eks_rolling_sandbox.redis_procs import ClusterLayout, RedisProcess, cluster_nodes, wait_until

pytestmark = pytest.mark.integration


def test_a_dead_unflagged_master_does_not_cover_its_slots(
    redis_cluster: tuple[list[RedisProcess], ClusterLayout],
) -> None:
    procs, layout = redis_cluster
    observer = procs[1].cfg.address
    # Given a healthy cluster: every slot covered in every view
    assert all(uncovered(cluster_nodes(*p.cfg.address)) == 0 for p in procs)
    dead_id = layout.node_ids[procs[0].cfg.address]
    # When master 0 dies (its replica not promoted yet: cluster-node-timeout is 5 s)
    procs[0].kill()

    def dead_master() -> dict[str, object]:
        return dict(next(n for n in cluster_nodes(*observer) if n["id"] == dead_id))

    assert wait_until(lambda: dead_master()["link_state"] == "disconnected", timeout_s=4, interval_s=0.02)
    view = cluster_nodes(*observer)
    me = next(n for n in view if n["id"] == dead_id)
    # Then, while its peers still flag it a plain master that holds slots 0-5460...
    assert "fail" not in me["flags"] and "fail?" not in me["flags"], me
    assert me["slots"] == [(0, 5460)] and "master" in me["flags"]
    # ...those 5461 slots count as uncovered
    assert uncovered(view) == 5461
