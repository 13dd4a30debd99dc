"""The Sentinel procedure against real redis-server and sentinel processes on the sandbox: plan-time
health, a replica's move and the master's move (switchover, move, failback), driven round by
round through MoveRedisPods as the state machine does."""

from __future__ import annotations

import re

import pytest

from eks_rolling.services.redis.sentinel import PRIORITY_ANNOTATION
from tests.factories.redis_sentinel import (
    MASTER,
    REPLICAS,
    SENTINELS,
    SentinelField,
    requires,
    wait_for,
)

pytestmark = [*requires, pytest.mark.slow]


def test_health_names_the_master_and_blocks_an_unhealthy_group(sentinel: SentinelField) -> None:
    # Given a converged group: healthy, and its master pod is named for the planner's ordering
    health = sentinel.health()
    assert health.problems == [] and health.master_pods == [MASTER]

    # When a replica's replication link is broken (wrong masterauth, link killed)
    with sentinel.client(REPLICAS[0]) as r:
        r.config_set("masterauth", "wrong")
        r.execute_command("CLIENT", "KILL", "TYPE", "master")
    wait_for(
        lambda: sentinel.role(REPLICAS[0]) == "slave" and "link down" in " ".join(sentinel.health().problems),
        10,
        "link down",
    )
    # Then the group is a blocker, naming the replica
    assert any(REPLICAS[0] in p and "not in sync" in p for p in sentinel.health().problems)
    with sentinel.client(REPLICAS[0]) as r:
        r.config_set("masterauth", sentinel.password)

    # When a sentinel does not answer, that is a blocker too
    wait_for(lambda: sentinel.health().problems == [], 15, "healthy again")
    sentinel.freeze(SENTINELS[1])
    try:
        problems = sentinel.health().problems
    finally:
        sentinel.freeze(SENTINELS[1], frozen=False)
    assert any(SENTINELS[1] in p and "does not answer" in p for p in problems), problems


def test_a_replica_moves_to_a_new_node_and_the_sentinels_forget_its_old_ip(sentinel: SentinelField) -> None:
    # Given writes in flight and replica-1's node retired
    victim = REPLICAS[1]
    before = sentinel.pod(victim)
    writer = sentinel.writer()
    node = sentinel.retire(victim)

    # When MoveRedisPods runs for that node until done
    out, actions = sentinel.drive(node, timeout=90)
    report = writer.stop()
    lost = report.lost

    # Then the pod is back under the same name on another node, with a new IP, in sync
    after = sentinel.pod(victim)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["nodeName"] != before["spec"]["nodeName"]
    assert sentinel.ip(victim) != before["status"]["podIP"]
    text = "\n".join(actions)
    assert re.search(rf"evicted pod {victim} .* on {before['spec']['nodeName']}", text), text
    assert f"{victim} back on {after['spec']['nodeName']} at {sentinel.ip(victim)}" in text
    # ... every sentinel was reset one at a time and lists exactly the live replicas again
    # (a sentinel that shared the node was moved too: restarted, it holds nothing stale)
    restarted = {m.pod for m in out.moves if m.role == "sentinel"}
    resets = re.findall(r"SENTINEL RESET mymaster on (redis-sentinel-\d)", text)
    assert sorted(resets) == sorted(set(SENTINELS) - restarted), text
    converged = re.findall(r"sentinel (redis-sentinel-\d) converged", text)
    assert converged == resets  # each converged before the next was reset
    assert sentinel.converged()
    # ... the master never moved and no write was lost or held up
    assert sentinel.role(MASTER) == "master"
    assert lost == 0 and report.acked > 500 and report.max_gap_ms < 500, report
    assert out.done and all(m.done for m in out.moves)


@pytest.mark.parametrize("failback", [True, False], ids=["failback", "no-failback"])
def test_the_master_moves_with_a_zero_loss_switchover(sentinel: SentinelField, failback: bool) -> None:
    # Given writes through a Sentinel-aware client and the master's node retired
    sentinel.settings["redis_failback"] = str(failback).lower()
    before = sentinel.pod(MASTER)
    writer = sentinel.writer()
    node = sentinel.retire(MASTER)

    # When MoveRedisPods runs for that node until done
    out, actions = sentinel.drive(node, timeout=150)
    report = writer.stop()
    text = "\n".join(actions)

    # Then a switchover ran out to a replica on another node (and back to the moved pod) ...
    move = next(m for m in out.moves if m.pod == MASTER)
    legs = [(s["from"], s["to"]) for s in move.data["switchovers"]]
    target = legs[0][1]
    assert target in REPLICAS and legs == [(MASTER, target), (target, MASTER)][: 2 if failback else 1], legs
    assert len(re.findall(r"SENTINEL FAILOVER via", text)) == len(legs), text
    # ... the master pod was deleted only as a replica, and came back on another node
    after = sentinel.pod(MASTER)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["nodeName"] != before["spec"]["nodeName"]
    assert re.search(rf"{MASTER} back on .*, in sync with master {target} ", text), text
    # ... the master is where failback says, named by every sentinel, which list only live replicas
    master = MASTER if failback else target
    assert sentinel.role(master) == "master" and sentinel.converged(master), sentinel.describe()
    # ... the priorities are back and their records gone
    for p in (MASTER, *REPLICAS):
        assert sentinel.priority(p) == 100
        assert PRIORITY_ANNOTATION not in (sentinel.pod(p)["metadata"].get("annotations") or {})
    # ... and no acknowledged write was lost; each switchover held writes briefly
    assert report.lost == 0 and report.acked > 1000, report
    assert all(s["paused_ms"] < 2500 for s in move.data["switchovers"]), move.data["switchovers"]
    assert report.max_gap_ms < 2500, report
