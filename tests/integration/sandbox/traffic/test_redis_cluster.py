"""The slot-coverage check the demo and the Redis Cluster e2e tests rely on
(cluster_report.uncovered) honours cluster-bus link state: a master killed a moment ago, not yet
flagged fail? or fail by its peers, no longer covers its slots. Before, it counted as covering
them for the whole cluster-node-timeout, so a roll could kill a master unseen."""

from __future__ import annotations

import time

from eks_rolling_sandbox.redis.procs import ClusterLayout, RedisProcess, cluster_nodes
from eks_rolling_sandbox.traffic.redis_cluster import uncovered


def test_a_dead_unflagged_master_does_not_cover_its_slots(
    redis_cluster: tuple[list[RedisProcess], ClusterLayout],
) -> None:
    procs, layout = redis_cluster
    ids = {p.cfg.address: layout.node_ids[p.cfg.address] for p in procs}
    everyone = set(ids.values())
    # Given a healthy cluster: every slot covered in every view, every node answering
    assert all(uncovered(cluster_nodes(*p.cfg.address), everyone) == 0 for p in procs)
    dead_id = ids[procs[0].cfg.address]
    alive = everyone - {dead_id}
    # When master 0 dies (its replica is not promoted before cluster-node-timeout, 5 s)
    procs[0].kill()
    t_kill = time.monotonic()
    seen: list[int] = []
    unflagged_views = 0
    while time.monotonic() - t_kill < 3.5:  # sampled as the monitor does, well inside 5 s
        for p in procs[1:]:
            view = cluster_nodes(*p.cfg.address)
            dead = next(n for n in view if n["id"] == dead_id)
            if dead["flags"] & {"fail", "fail?"}:
                continue
            unflagged_views += 1
            assert "master" in dead["flags"] and dead["slots"] == [(0, 5460)], dead
            seen.append(uncovered(view, alive))
            # ...had it answered the monitor's own probe, a down link alone would not count
            assert uncovered(view, everyone) == 0
        time.sleep(0.05)
    # Then, while its peers still call it a plain master holding slots 0-5460, views show those
    # 5461 slots uncovered (and never anything else)
    assert unflagged_views > 10, unflagged_views
    assert max(seen) == 5461 and set(seen) <= {0, 5461}, seen
