"""The history budget: how many Step Functions history events a roll writes, from measured
polling rounds. Used by the planner (plan.py) and the wave grouping (waves.py)."""

from __future__ import annotations

# History events the state machine writes (see statemachine/*.asl.json and the README's "Waves";
# tests/e2e checks these against a measured execution). A Task state is
# 5 events, a Wait 2, a Choice 2, a Pass 2, a Map iteration 2 plus 3-4 for the Map state itself.
EVENTS_FIXED = 87  # resolve, plan, await-window saying go, pause, suspend, taint, restore, release, maps
EVENTS_PER_BATCH = 24  # map iteration, surge, one wait-new-nodes round, inner map
EVENTS_PER_WAIT_ROUND = 9  # Task + Choice + Wait
# map iteration, redis, choice, drain, choice, owners, choice, exclude, wait, terminate, choice
# (PostReplaceHooks or not), pass. PreDrainHooks is chosen by the Redis Choice, at no cost; each
# hook step that runs adds EVENTS_PER_HOOK_STEP.
EVENTS_PER_NODE = 41
EVENTS_PER_HOOK_STEP = 5  # a Task: entered, scheduled, started, succeeded, exited
# Polling rounds (Task + Choice + Wait each), calibrated on a roll in the REALISTIC timing profile
# (eks_rolling_sandbox/timing.py: 60-120 s EC2 boot, probes, preStop and grace periods, the
# tool's default 10 s polls and deadlines, all scaled by one factor, so the rounds are the real
# ones): tests/e2e/test_realistic_roll.py, the field-report cluster, 6 nodes in 3 batches,
# measured 2026-12-06: 20 drain/owner rounds (3.3 per node), 18 new-nodes rounds (6.0 per
# batch), 82 Lambda invocations, 682 history events (114 per node). Re-measure with
# `.venv/bin/pytest tests/e2e/test_realistic_roll.py -s -n 0` (it prints the counts and fails
# when a real roll needs more rounds than budgeted here).
# Re-measured 2026-12-07 with adaptive polling (PollState.pace, poll_cap_s 60; same test):
# 4.33-5.67 drain/owner rounds per node, 4.67-5.33 new-nodes rounds per batch, 14.3-15.3 Lambda
# invocations and 36-39 state transitions per node (fixed 10 s polling: 4.67 / 7.33-8.67 / 15.7 /
# 40.3). Neither assumption is lowered: a wait restarts at poll_interval_s on every change, so a
# large batch whose nodes boot at different times polls up to the fixed rate, and more pods per
# node mean more drain changes; adaptive polling never makes MORE rounds than fixed polling.
ASSUMED_POLL_ROUNDS_PER_NODE = 6  # measured 3.3 per node; headroom for nodes with more pods/PDBs
# The batch waits for its slowest new node: the profile's 120 s worst boot / the 10 s poll.
ASSUMED_WAIT_ROUNDS_PER_BATCH = 12  # measured 6.0 per batch (mean boot 90 s); adaptive 5.0-6.67
# MoveRedisPods rounds (Task + Choice + Wait each) per managed Redis pod on an old node. Measured
# on the field-report demo (`make demo`, realistic profile, factor 0.05; execution.counts in
# build/demo-report.json): 173 rounds for the 12 Redis pods, 2,212 history events for 6 nodes (compressed
# time gave 178 rounds, at most 77 on the node with the Sentinel master: two switchovers, the
# move, the sentinel resets). The redis-server processes run in real time while the Waits are
# scaled, so a real roll polls a Redis move fewer times than this. Budgeted with headroom.
ASSUMED_REDIS_ROUNDS_PER_POD = 25
ASSUMED_REDIS_ROUNDS_PER_SENTINEL_MASTER = 100


def estimate_history_events(
    nodes: int,
    batches: int,
    *,
    poll_rounds_per_node: int = ASSUMED_POLL_ROUNDS_PER_NODE,
    wait_rounds_per_batch: int = ASSUMED_WAIT_ROUNDS_PER_BATCH,
    redis_pods: int = 0,
    sentinel_masters: int = 0,
) -> int:
    """`redis_pods`: managed Redis pods on the old nodes, `sentinel_masters` of them masters."""
    redis_rounds = (
        redis_pods - sentinel_masters
    ) * ASSUMED_REDIS_ROUNDS_PER_POD + sentinel_masters * ASSUMED_REDIS_ROUNDS_PER_SENTINEL_MASTER
    return (
        EVENTS_FIXED
        + batches * (EVENTS_PER_BATCH + wait_rounds_per_batch * EVENTS_PER_WAIT_ROUND)
        + nodes * (EVENTS_PER_NODE + poll_rounds_per_node * EVENTS_PER_WAIT_ROUND)
        + redis_rounds * EVENTS_PER_WAIT_ROUND
    )


def max_nodes_per_execution(batch_size: int, limit: int = 25_000) -> int:
    """The largest node group one execution can roll under the history limit, at typical polling."""
    n = 0
    while estimate_history_events(n + 1, -(-(n + 1) // batch_size)) <= limit:
        n += 1
    return n
