"""Every phase of the Sentinel procedure as input/output pairs: a Survey (values only, no network,
no process) and the move's state in, a decision (Wait, Act or Abort) out."""

from __future__ import annotations

from dataclasses import replace

from eks_rolling.errors import RedisGroupUnhealthyError, RedisSwitchoverError
from eks_rolling.services.redis.procedure import Abort, Act, Evict, Wait
from eks_rolling.services.redis.sentinel import decide
from eks_rolling.services.redis.sentinel.decide import (
    ALIGN_GIVE_UP_S,
    STEER_PRIORITY,
    WAIT_POD_S,
    WAIT_SENTINEL_S,
)
from eks_rolling.services.redis.sentinel.model import (
    Demote,
    Follow,
    PauseWrites,
    RecordPriority,
    Reset,
    RestorePriority,
    SetPriority,
    Switchover,
    Unpause,
)
from eks_rolling.services.redis.sentinel.survey import PRIORITY_ANNOTATION
from tests.factories.sentinel_survey import (
    MASTER,
    NOW,
    OFFSET,
    R0,
    R1,
    S0,
    S1,
    S2,
    a_round,
    as_master,
    as_replica,
    group,
    pod,
    steered,
    view,
)


def _stale(sv, *names: str, ip: str = "10.9.9.9", info_refresh_ms: int = 9_000):  # type: ignore[no-untyped-def]
    """`sv` where sentinels `names` still list a moved replica's old IP."""
    m = sv.master()
    replicas = [p for p in sv.data_pods if p.name != m.name]
    for n in names:
        s = sv.pods[n]
        peers = [o for o in sv.sentinel_pods if o.name != n]
        sv.views[n] = view(s, m, replicas, peers, extra_replicas=(ip,), info_refresh_ms=info_refresh_ms)
    return sv


# --- start --------------------------------------------------------------------------------------
def test_start_a_replica_goes_to_move() -> None:
    d = decide.decide(a_round(group(), R0))
    assert isinstance(d, Act) and d.phase == "move" and d.actions == ()
    assert d.state is not None and d.state.flow == "replica"


def test_start_a_pod_already_replaced_is_done() -> None:
    sv = group(pod(R0, uid="someone-else"))
    d = decide.decide(a_round(sv, R0))
    assert isinstance(d, Act) and d.phase == "done"
    assert d.notes == (f"{R0} was already replaced; nothing to move", "no sentinel holds stale entries")


def test_start_a_sentinel_goes_to_move() -> None:
    d = decide.decide(a_round(group(), S1))
    assert isinstance(d, Act) and d.phase == "move" and d.state is not None and d.state.flow == "sentinel"


def test_start_the_master_picks_an_in_sync_replica_on_a_new_node() -> None:
    sv = group(pod(R0, retiring=True))
    d = decide.decide(a_round(sv, MASTER))
    assert isinstance(d, Act) and d.phase == "steer"
    assert d.state is not None and (d.state.flow, d.state.target) == ("master", R1)


def test_start_the_master_waits_while_every_replica_lags() -> None:
    sv = group()
    m = sv.pods[MASTER]
    sv.repl[R0] = as_replica(m, OFFSET - 200_000)
    sv.repl[R1] = as_replica(m, OFFSET - 300_000)
    d = decide.decide(a_round(sv, MASTER))
    assert isinstance(d, Wait) and d.wait_s == WAIT_SENTINEL_S and d.timed
    assert d.reason == f"no switchover target yet: {R1} is 300000 bytes / 0s behind the master"


def test_start_the_master_never_picks_a_replica_sentinel_may_not_promote() -> None:
    sv = group()
    sv.prios[R0] = 0
    sv.prios[R1] = 0
    d = decide.decide(a_round(sv, MASTER))
    assert isinstance(d, Wait) and d.reason.endswith(f"{R1} has replica-priority 0 (never promoted)")


def test_start_waits_for_a_pod_that_does_not_answer() -> None:
    sv = group()
    sv.repl[R0] = ConnectionError("refused")
    d = decide.decide(a_round(sv, R0))
    assert d == Wait(f"{R0} does not answer: refused", WAIT_POD_S)


# --- steer --------------------------------------------------------------------------------------
def test_steer_records_then_lowers_the_targets_priority() -> None:
    d = decide.decide(a_round(group(), MASTER, "steer", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "switchover"
    assert d.actions == (RecordPriority(R0, 100), SetPriority(R0, STEER_PRIORITY))


def test_steer_keeps_a_priority_already_recorded() -> None:
    sv = group(pod(R0, annotations={PRIORITY_ANNOTATION: "70"}))
    d = decide.decide(a_round(sv, MASTER, "steer", flow="master", target=R0))
    assert isinstance(d, Act) and d.actions == (SetPriority(R0, STEER_PRIORITY),)
    assert "replica-priority of cache-replica-0 70 -> 1" in d.notes[0]


def test_steer_back_steers_the_original_pod_and_goes_to_switchover_back() -> None:
    d = decide.decide(a_round(group(master=R0), MASTER, "steer-back", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "switchover-back"
    assert d.actions == (RecordPriority(MASTER, 100), SetPriority(MASTER, STEER_PRIORITY))


def test_steer_aborts_when_another_replica_already_has_the_lowest_priority() -> None:
    sv = group()
    sv.prios[R1] = STEER_PRIORITY
    d = decide.decide(a_round(sv, MASTER, "steer", flow="master", target=R0))
    assert isinstance(d, Abort) and isinstance(d.error, RedisSwitchoverError)
    assert f"{R1} has replica-priority 1" in str(d.error) and d.actions == ()


def test_steer_aborts_when_the_target_is_gone() -> None:
    sv = group()
    del sv.pods[R0]
    d = decide.decide(a_round(sv, MASTER, "steer", flow="master", target=R0))
    assert isinstance(d, Abort) and "switchover target is gone" in str(d.error)


# --- switchover ---------------------------------------------------------------------------------
def test_switchover_waits_until_every_sentinel_sees_the_steered_priority() -> None:
    d = decide.decide(a_round(group(), MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Wait) and d.wait_s == WAIT_SENTINEL_S
    assert "does not list cache-replica-0 (10.0.0.11) as a healthy replica with priority 1" in d.reason


def test_switchover_goes_when_the_leaders_info_of_the_target_is_in_the_window() -> None:
    sv = steered(group(), R0)
    for name in (S0, S1, S2):  # ages 300, 400, 500 ms: all in the window, the first is picked
        v = sv.views[name]
        assert not isinstance(v, Exception)
        age = {S0: 600, S1: 400, S2: 450}[name]
        sv.views[name] = replace(v, replicas=tuple(replace(x, info_refresh_ms=age) for x in v.replicas))
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "confirm"
    assert d.actions == (Switchover(MASTER, R0, 1, 0, True), RestorePriority(R0))


def test_switchover_times_itself_to_the_next_info_without_counting_against_the_deadline() -> None:
    sv = steered(group(), R0)
    for name in (S0, S1, S2):
        v = sv.views[name]
        assert not isinstance(v, Exception)
        sv.views[name] = replace(v, replicas=tuple(replace(x, info_refresh_ms=4_000) for x in v.replicas))
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Wait) and not d.timed and d.wait_s == 5
    assert d.state is not None and d.state.align_since == NOW
    assert "(in ~6300 ms)" in d.reason


def test_switchover_gives_up_aligning_after_a_while() -> None:
    sv = steered(group(), R0)
    r = a_round(sv, MASTER, "switchover", flow="master", target=R0, align_since=NOW - ALIGN_GIVE_UP_S - 1)
    for name in (S0, S1, S2):
        v = sv.views[name]
        assert not isinstance(v, Exception)
        sv.views[name] = replace(v, replicas=tuple(replace(x, info_refresh_ms=4_000) for x in v.replicas))
    d = decide.decide(r)
    assert isinstance(d, Act) and d.actions[0] == Switchover(MASTER, R0, 0, 0, False)
    assert d.state is not None and d.state.align_since is None


def test_switchover_aborts_before_pausing_when_a_sentinel_is_down() -> None:
    sv = steered(group(pod(S2, ready=False)), R0)
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Abort) and isinstance(d.error, RedisGroupUnhealthyError) and d.actions == ()


def test_switchover_aborts_before_pausing_when_a_sentinel_is_unreachable() -> None:
    sv = steered(group(), R0)
    sv.views[S1] = TimeoutError("timed out")
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Abort) and "unreachable (timed out)" in str(d.error)


def test_switchover_retried_after_the_promotion_holds_writes_until_the_failover_is_agreed() -> None:
    sv = group()  # sentinels still name the old master, a failover in progress
    sv.repl[R0] = as_master([])
    for name in (S0, S1):
        v = sv.views[name]
        assert not isinstance(v, Exception)
        sv.views[name] = replace(v, master_flags=frozenset({"master", "failover_in_progress"}))
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Wait) and d.actions == (PauseWrites(MASTER),) and d.wait_s == 1
    assert d.reason == f"{MASTER} and {R0} both report role master; sentinels settling"


def test_switchover_retried_demotes_the_old_master_once_sentinels_name_the_new_one() -> None:
    sv = group(master=R0)
    sv.repl[MASTER] = as_master([])
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "confirm"
    assert d.actions == (Demote(MASTER, R0), RestorePriority(R0))


def test_switchover_two_masters_and_sentinels_settled_on_the_old_one_aborts() -> None:
    sv = group()
    sv.repl[R0] = as_master([])
    d = decide.decide(a_round(sv, MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Abort) and "but the sentinels name" in str(d.error)


def test_switchover_already_done_moves_on() -> None:
    d = decide.decide(a_round(group(master=R0), MASTER, "switchover", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "confirm" and d.actions == (RestorePriority(R0),)


# --- confirm ------------------------------------------------------------------------------------
def test_confirm_waits_until_every_sentinel_names_the_new_master() -> None:
    sv = group(master=R0)
    sv.views[S2] = view(sv.pods[S2], sv.pods[MASTER], [sv.pods[R0], sv.pods[R1]], [sv.pods[S0], sv.pods[S1]])
    d = decide.decide(a_round(sv, MASTER, "confirm", flow="master", target=R0))
    assert isinstance(d, Wait) and d.reason.endswith("waiting for all to name cache-replica-0 (10.0.0.11)")


def test_confirm_then_move() -> None:
    d = decide.decide(a_round(group(master=R0), MASTER, "confirm", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "move" and d.actions == ()


def test_confirm_back_finishes_the_move() -> None:
    d = decide.decide(a_round(group(), MASTER, "confirm-back", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "done"


# --- move ---------------------------------------------------------------------------------------
def test_move_evicts_a_replica() -> None:
    d = decide.decide(a_round(group(), R0, "move", flow="replica", throttled=3))
    assert isinstance(d, Act) and d.phase == "rejoin" and d.actions == (Evict(R0, f"uid-{R0}"),)
    assert d.state is not None and d.state.throttled is None


def test_move_refuses_to_evict_a_master() -> None:
    d = decide.decide(a_round(group(master=R0), R0, "move", flow="replica"))
    assert isinstance(d, Abort) and "refusing to evict" in str(d.error)


def test_move_a_sentinel_waits_for_the_others_quorum() -> None:
    sv = group()
    v = sv.views[S2]
    assert not isinstance(v, Exception)
    sv.views[S2] = replace(v, quorum="NOQUORUM 1 usable Sentinels")
    d = decide.decide(a_round(sv, S0, "move", flow="sentinel"))
    assert d == Wait(f"sentinel {S2} must reach quorum before {S0} goes", WAIT_SENTINEL_S)


def test_move_of_a_pod_already_gone_skips_the_eviction() -> None:
    d = decide.decide(a_round(group(pod(R0, terminating=True)), R0, "move", flow="replica"))
    assert isinstance(d, Act) and d.phase == "rejoin" and d.actions == ()


# --- rejoin -------------------------------------------------------------------------------------
def test_rejoin_waits_for_the_new_pod() -> None:
    d = decide.decide(a_round(group(), R0, "rejoin", flow="replica"))
    assert d == Wait(f"{R0} is not back and Ready yet", 1)


def test_rejoin_waits_when_recreated_on_a_retiring_node() -> None:
    sv = group(pod(R0, uid="new", retiring=True))
    d = decide.decide(a_round(sv, R0, "rejoin", flow="replica"))
    assert isinstance(d, Wait) and "recreated on retiring node" in d.reason


def test_rejoin_waits_for_a_lagging_replica() -> None:
    sv = group(pod(R0, uid="new"))
    sv.repl[R0] = as_replica(sv.pods[MASTER], OFFSET - 100_000)
    d = decide.decide(a_round(sv, R0, "rejoin", flow="replica"))
    assert d == Wait(f"{R0} is 100000 bytes / 0s behind the master", 1)


def test_rejoin_a_second_master_is_demoted_and_aborts() -> None:
    sv = group(pod(R0, uid="new"))
    sv.repl[R0] = as_master([])
    d = decide.decide(a_round(sv, R0, "rejoin", flow="replica"))
    assert isinstance(d, Abort) and d.actions == (Follow(R0, MASTER),)
    assert str(d.error).endswith(
        f"came back as a second master; demoted to a replica of {MASTER} (10.0.0.10)"
    )


def test_rejoin_of_the_old_master_fails_back() -> None:
    sv = group(pod(MASTER, uid="new"), master=R0)
    d = decide.decide(a_round(sv, MASTER, "rejoin", flow="master", target=R0))
    assert isinstance(d, Act) and d.phase == "steer-back"
    d = decide.decide(a_round(sv, MASTER, "rejoin", flow="master", target=R0, failback=False))
    assert isinstance(d, Act) and d.phase == "done"


def test_rejoin_defers_the_reset_while_pods_are_left_on_retiring_nodes() -> None:
    sv = _stale(group(pod(R0, uid="new"), pod(R1, retiring=True)), S0)
    d = decide.decide(a_round(sv, R0, "rejoin", flow="replica"))
    assert isinstance(d, Act) and d.phase == "done"
    assert d.notes[-1] == f"sentinel reset deferred: {R1} still on retiring nodes"


def test_rejoin_of_the_last_pod_goes_to_reset_the_stale_entries() -> None:
    sv = _stale(group(pod(R0, uid="new")), S0, S2)
    d = decide.decide(a_round(sv, R0, "rejoin", flow="replica"))
    assert isinstance(d, Act) and d.phase == "reset"
    assert d.state is not None and d.state.reset_todo == [S0, S2]


def test_rejoin_a_sentinel_waits_until_its_peers_list_it() -> None:
    sv = group(pod(S0, uid="new"))
    v = sv.views[S1]
    assert not isinstance(v, Exception)
    sv.views[S1] = replace(v, peers=tuple(p for p in v.peers if p[0] != sv.pods[S0].ip))
    d = decide.decide(a_round(sv, S0, "rejoin", flow="sentinel"))
    assert d == Wait(f"sentinel {S1} does not list {S0} (10.0.1.10) with quorum yet", WAIT_SENTINEL_S)


# --- reset --------------------------------------------------------------------------------------
def test_reset_resets_the_sentinel_whose_info_is_due_soonest() -> None:
    sv = _stale(_stale(group(), S0, info_refresh_ms=8_600), S2, info_refresh_ms=9_200)
    d = decide.decide(a_round(sv, "cache-sentinel-0", "reset", reset_todo=[S0, S2]))
    assert isinstance(d, Act) and d.phase == "reset" and d.actions == (Reset(S2),)
    assert d.state is not None and (d.state.reset_sent, d.state.reset_at) == (S2, NOW)


def test_reset_waits_for_the_info_window_without_counting_against_the_deadline() -> None:
    sv = _stale(group(), S0, info_refresh_ms=2_000)
    d = decide.decide(a_round(sv, S1, "reset", reset_todo=[S0]))
    assert isinstance(d, Wait) and not d.timed and d.wait_s == 6


def test_reset_waits_for_the_reset_sentinel_to_converge() -> None:
    sv = _stale(group(), S0)
    d = decide.decide(a_round(sv, S1, "reset", reset_todo=[S0], reset_sent=S0, reset_at=NOW - 1))
    assert (
        isinstance(d, Wait)
        and d.timed
        and d.reason.startswith(f"after SENTINEL RESET on {S0}: lists replicas")
    )


def test_reset_done_once_the_last_sentinel_converged() -> None:
    d = decide.decide(a_round(group(), S1, "reset", reset_todo=[S0], reset_sent=S0, reset_at=NOW - 1.5))
    assert isinstance(d, Act) and d.phase == "done" and d.actions == ()
    assert d.notes[0].startswith(f"sentinel {S0} converged 1.5s after its reset")


def test_reset_holds_while_another_sentinel_is_not_settled_and_restarts_the_clock() -> None:
    sv = _stale(group(), S2)
    v = sv.views[S1]
    assert not isinstance(v, Exception)
    sv.views[S1] = replace(v, quorum="NOQUORUM")
    d = decide.decide(a_round(sv, S1, "reset", reset_todo=[S0, S2], reset_sent=S0, reset_at=NOW - 2))
    assert isinstance(d, Wait) and d.reason == f"sentinel {S1} is not settled" and d.restart_clock
    assert d.state is not None and (d.state.reset_todo, d.state.reset_sent) == ([S2], None)


def test_reset_waits_for_a_sentinel_that_does_not_answer_instead_of_calling_it_clean() -> None:
    sv = _stale(group(), S2)
    sv.views[S0] = TimeoutError("timed out")
    d = decide.decide(a_round(sv, S1, "reset", reset_todo=[S0, S2]))
    assert isinstance(d, Wait) and d.reason == f"sentinel {S0} does not answer: timed out"


def test_reset_waits_without_a_single_master() -> None:
    sv = group()
    sv.repl[R0] = as_master([])
    d = decide.decide(a_round(sv, S1, "reset", reset_todo=[S0]))
    assert d == Wait("the group has no single master", WAIT_POD_S)


def test_an_unknown_phase_aborts() -> None:
    d = decide.decide(a_round(group(), R0, "teleport"))
    assert isinstance(d, Abort) and "unknown phase 'teleport'" in str(d.error)


# --- plan time and cleanup ----------------------------------------------------------------------
def test_health_of_a_healthy_group() -> None:
    h = decide.health(group(), "redis")
    assert (h.problems, h.master_pods) == ([], [MASTER])


def test_health_names_a_lagging_replica_and_a_sentinel_without_quorum() -> None:
    sv = group()
    sv.repl[R1] = as_replica(sv.pods[MASTER], OFFSET - 70_000)
    v = sv.views[S2]
    assert not isinstance(v, Exception)
    sv.views[S2] = replace(v, quorum="NOQUORUM 1 usable Sentinels")
    assert decide.health(sv, "redis").problems == [
        f"replica not in sync: {R1} is 70000 bytes / 0s behind the master",
        f"sentinel {S2}: NOQUORUM 1 usable Sentinels",
    ]


def test_cleanup_demotes_a_second_master_then_unpauses_and_restores_priorities() -> None:
    sv = group(pod(R0, annotations={PRIORITY_ANNOTATION: "100"}), pod(R1, ready=False))
    sv.repl[R0] = as_master([])
    actions, notes = decide.cleanup(sv, "redis/cache")
    assert actions == [Demote(R0, MASTER), Unpause(MASTER), Unpause(R0), RestorePriority(R0)]
    assert notes == [f"Redis group redis/cache: demoted second master {R0} (10.0.0.11) to follow {MASTER}"]


def test_cleanup_leaves_two_masters_alone_without_a_sentinel_majority() -> None:
    sv = group()
    sv.repl[R0] = as_master([])
    sv.views[S0] = view(sv.pods[S0], sv.pods[R0], [], [])
    actions, notes = decide.cleanup(sv, "redis/cache")
    assert not any(isinstance(a, Demote) for a in actions)
    assert notes == ["Redis group redis/cache: 2 masters and no sentinel majority to pick one"]
