"""Every Redis Cluster phase decision as input/output pairs: a Survey made of values (pods and
every node's answers; no network, no process) and the move's typed state in; Wait (why), Act
(actions, next phase) or Abort (a named error) out. One section per phase."""

from __future__ import annotations

from dataclasses import replace

from eks_rolling.errors import RedisGroupUnhealthyError, RedisSwitchoverError, RedisTempNodeError
from eks_rolling.labels import LABEL_RUN, REDIS_PORT
from eks_rolling.redis.cluster import NodeEntry
from eks_rolling.services.redis.cluster.decide import Decision, decide
from eks_rolling.services.redis.cluster.model import (
    Announce,
    Configure,
    CreateTemp,
    DeleteTemp,
    Failover,
    Forget,
    Meet,
    Replicate,
)
from eks_rolling.services.redis.cluster.survey import FAILOVER_ATTEMPTS, FAILOVER_RETRY_S, Survey
from eks_rolling.services.redis.procedure import Abort, Act, Evict, Wait
from tests.factories.cluster_survey import (
    NOW,
    RUN,
    TEMP,
    WALL,
    a_round,
    back_on_new_node,
    pod,
    survey,
)
from tests.factories.cluster_views import (
    IPS,
    NAMES,
    SLOTS,
    A,
    B,
    C,
    T,
    after_failback,
    after_failover_to_temp,
    entry,
    healthy_entries,
    with_temp_as_replica_of_a,
)

NEW_IP = "10.2.0.10"
EVERYONE = (*(NAMES[n] for n in (A, B, C, "d" * 40, "e" * 40, "f" * 40)), TEMP)


# --- start --------------------------------------------------------------------------------------
def test_start_a_master_of_slots_creates_its_temporary_node_in_its_zone() -> None:
    d = decide(a_round("start", survey()))
    assert isinstance(d, Act) and d.phase == "temp_start"
    assert d.actions == (CreateTemp("cache-0", "cache", TEMP, A, ((0, 5460),), "zone-a"),)
    assert d.state is not None and d.state.slots == [[0, 5460]] and d.state.started == NOW.isoformat()


def test_start_a_replica_is_evicted_and_awaited() -> None:
    d = decide(a_round("start", survey(), pod_name="cache-1", uid="uid-cache-1", node="old-cache-1"))
    assert isinstance(d, Act) and d.phase == "restart"
    assert d.actions == (Evict("cache-1", "uid-cache-1"),)
    assert d.state is not None and d.state.kind == "replica" and d.state.node_id == B
    assert f"is a replica of {A[:8]}" in d.notes[0]


def test_start_waits_while_the_group_is_unhealthy_and_names_why() -> None:
    es = healthy_entries()
    es[B] = entry(B, "slave", "fail", master=A)
    d = decide(a_round("start", survey(es, states={"cache-2": "fail"})))
    assert isinstance(d, Wait) and d.error is RedisGroupUnhealthyError
    assert "cache-2: cluster_state:fail" in d.reason and f"flags node {B[:8]}" in d.reason


def test_start_waits_for_a_leftover_temporary_pod_of_another_run_but_not_its_own() -> None:
    other = pod(T, labels={LABEL_RUN: "run-0"}, annotations={})
    d = decide(a_round("start", survey(leftovers=[other])))
    assert isinstance(d, Wait) and f"temporary pod {TEMP} of run run-0 is still there" in d.reason
    own = pod(T, labels={LABEL_RUN: RUN})
    assert isinstance(decide(a_round("start", survey(leftovers=[own]))), Act)


def test_start_a_pod_already_replaced_is_awaited_and_one_already_moved_is_done() -> None:
    gone = decide(a_round("start", survey(pods={"cache-0": None})))
    assert isinstance(gone, Act) and gone.phase == "restart" and gone.actions == ()
    moved = decide(a_round("start", survey(pods={"cache-0": pod(A, node="elsewhere")})))
    assert isinstance(moved, Act) and moved.phase == "done" and "no longer on old-cache-0" in moved.notes[0]


def test_start_aborts_when_the_masters_node_has_no_zone() -> None:
    d = decide(a_round("start", survey(zone=None)))
    assert isinstance(d, Abort) and isinstance(d.error, RedisTempNodeError)


# --- temp_start ---------------------------------------------------------------------------------
def test_temp_start_creates_a_missing_temporary_pod_again() -> None:
    d = decide(a_round("temp_start", survey()))
    assert isinstance(d, Wait) and isinstance(d.actions[0], CreateTemp)


def test_temp_start_waits_for_the_temporary_pod_then_aborts_if_it_landed_on_an_old_node() -> None:
    pending = pod(T, running=False, state="Pending (0/9 nodes available)")
    d = decide(a_round("temp_start", survey(pods={TEMP: pending})))
    assert isinstance(d, Wait) and d.reason == f"temporary pod {TEMP} is Pending (0/9 nodes available)"
    d = decide(a_round("temp_start", survey(with_temp=True, tainted=frozenset({"new-t"}))))
    assert isinstance(d, Abort) and "landed on old node new-t" in str(d.error)


def test_temp_start_configures_the_temporary_node_and_meets_the_peers_it_does_not_know() -> None:
    es = {**healthy_entries(), T: entry(T, "master")}
    # T already knows B: it meets A first, then the others, never B again
    sv = survey(es, with_temp=True, override={(T, n): None for n in es if n not in (T, B)})
    d = decide(a_round("temp_start", sv))
    assert isinstance(d, Act) and d.phase == "temp_join"
    assert d.actions[:2] == (
        Configure(TEMP, "cluster-allow-replica-migration", "no"),
        Configure(TEMP, "cluster-replica-no-failover", "yes"),
    )
    meets = [a for a in d.actions if isinstance(a, Meet)]
    assert meets[0] == Meet(TEMP, IPS[A], REDIS_PORT) and len(meets) == 5
    assert Meet(TEMP, IPS[B], REDIS_PORT) not in meets
    assert d.state is not None and d.state.temp_id == T


def test_temp_start_aborts_when_the_master_went_away() -> None:
    d = decide(a_round("temp_start", survey(with_temp=True, pods={"cache-0": None})))
    assert isinstance(d, Abort) and isinstance(d.error, RedisSwitchoverError)


# --- temp_join ----------------------------------------------------------------------------------
def test_temp_join_waits_until_every_peer_knows_the_temporary_node() -> None:
    es = {**healthy_entries(), T: entry(T, "master")}
    sv = survey(es, with_temp=True, override={(C, T): None, (B, T): entry(T, "handshake", "master")})
    d = decide(a_round("temp_join", sv))
    assert isinstance(d, Wait) and d.reason.startswith("2 of 7 nodes do not know the temporary node yet")
    assert d.actions == ()


def test_temp_join_replicates_a_and_announces_once_every_node_knows_it() -> None:
    es = {**healthy_entries(), T: entry(T, "master")}
    d = decide(a_round("temp_join", survey(es, with_temp=True)))
    assert isinstance(d, Act) and d.phase == "temp_sync"
    assert d.actions == (Replicate(TEMP, A), Announce(TEMP, EVERYONE))
    # an earlier attempt did replicate it: only the announcement again
    d = decide(a_round("temp_join", survey(with_temp_as_replica_of_a(), with_temp=True)))
    assert isinstance(d, Act) and d.actions == (Announce(TEMP, EVERYONE),)


def test_temp_join_waits_for_a_pod_that_is_not_running() -> None:
    d = decide(a_round("temp_join", survey(with_temp=True, pods={"cache-2": None})))
    assert isinstance(d, Wait) and d.reason == "cache-2 is absent"


def test_temp_join_aborts_when_a_is_no_longer_master_of_its_slots() -> None:
    es = with_temp_as_replica_of_a()
    es[A] = entry(A, "slave", master=B)
    d = decide(a_round("temp_join", survey(es, with_temp=True)))
    assert isinstance(d, Abort) and "no longer master of 0-5460" in str(d.error)


# --- temp_sync ----------------------------------------------------------------------------------
def test_temp_sync_waits_for_a_lagging_replica() -> None:
    sv = survey(with_temp_as_replica_of_a(), with_temp=True, synced=(False, "offset 5, master's 10"))
    d = decide(a_round("temp_sync", sv))
    assert isinstance(d, Wait) and d.reason == "temporary node not synced from cache-0: offset 5, master's 10"


def test_temp_sync_announces_to_masters_that_do_not_list_it_as_replica_yet() -> None:
    es = with_temp_as_replica_of_a()
    d = decide(a_round("temp_sync", survey(es, with_temp=True, override={(C, T): entry(T, "master")})))
    assert isinstance(d, Wait) and d.reason.startswith(f"masters {NAMES[C]} do not list")
    assert d.actions == (Announce(TEMP, EVERYONE),)
    assert d.state is not None and d.state.announced == [TEMP]
    # once per phase: the next round does not announce it again
    sv = survey(es, with_temp=True, override={(C, T): entry(T, "master")})
    again = decide(a_round("temp_sync", sv, announced=[TEMP]))
    assert isinstance(again, Wait) and again.actions == ()


def test_temp_sync_fails_over_to_the_synced_temporary_node() -> None:
    d = decide(a_round("temp_sync", survey(with_temp_as_replica_of_a(), with_temp=True)))
    assert isinstance(d, Act) and d.phase == "failover_to_temp" and d.actions == (Failover(TEMP),)
    assert d.state is not None and d.state.failover_at == WALL and d.state.failover_tries == 1


def test_temp_sync_verifies_a_failover_an_earlier_attempt_sent() -> None:
    d = decide(a_round("temp_sync", survey(after_failover_to_temp(), with_temp=True)))
    assert isinstance(d, Act) and d.phase == "failover_to_temp" and d.actions == ()


# --- failover_to_temp ---------------------------------------------------------------------------
def test_failover_to_temp_not_yet_agreed_waits_within_the_manual_failover_timeout() -> None:
    es = after_failover_to_temp()
    sv = survey(es, with_temp=True, override={(C, A): entry(A, "master", slots=SLOTS[A])})
    d = decide(a_round("failover_to_temp", sv, wall=WALL - 1 + FAILOVER_RETRY_S - 0.5))
    assert isinstance(d, Wait) and d.reason == f"{NAMES[C]} sees {A[:8]} as master"
    assert not any(isinstance(a, Failover) for a in d.actions)


def test_failover_to_temp_sends_the_failover_again_then_gives_up() -> None:
    sv = survey(with_temp_as_replica_of_a(), with_temp=True)  # nothing switched
    later = WALL - 1 + FAILOVER_RETRY_S
    d = decide(a_round("failover_to_temp", sv, wall=later))
    assert isinstance(d, Wait) and d.actions[-1] == Failover(TEMP)
    assert d.state is not None and d.state.failover_tries == 2 and d.state.failover_at == later
    d = decide(a_round("failover_to_temp", sv, wall=later, failover_tries=FAILOVER_ATTEMPTS))
    assert isinstance(d, Abort) and "did not take effect after 3 attempts" in str(d.error)


def test_failover_to_temp_evicts_a_once_every_node_agrees() -> None:
    d = decide(a_round("failover_to_temp", survey(after_failover_to_temp(), with_temp=True)))
    assert isinstance(d, Act) and d.phase == "a_restart"
    assert d.actions == (Evict("cache-0", "uid-cache-0"),)
    assert d.state is not None and d.state.failover_to_temp_s == 1.0


def test_failover_to_temp_after_an_earlier_attempt_evicted_a() -> None:
    d = decide(a_round("failover_to_temp", survey(with_temp=True, pods={"cache-0": None})))
    assert isinstance(d, Act) and d.phase == "a_restart" and d.actions == ()


# --- a_restart ----------------------------------------------------------------------------------
def _a_back_as_replica_of_t() -> dict[str, NodeEntry]:
    es = after_failover_to_temp()
    es[A] = entry(A, "slave", master=T, ip=NEW_IP)
    return es


def test_a_restart_evicts_the_old_pod_again() -> None:
    d = decide(a_round("a_restart", survey(after_failover_to_temp(), with_temp=True)))
    assert isinstance(d, Wait) and d.actions == (Evict("cache-0", "uid-cache-0"),)


def test_a_restart_aborts_when_a_came_back_on_an_old_node_or_without_its_node_id() -> None:
    es = _a_back_as_replica_of_t()
    back = {"cache-0": back_on_new_node()}
    d = decide(a_round("a_restart", survey(es, with_temp=True, pods=back, tainted=frozenset({"new-a"}))))
    assert isinstance(d, Abort) and "came back on old node new-a" in str(d.error)
    d = decide(a_round("a_restart", survey(es, with_temp=True, pods=back), node_id="9" * 40))
    assert isinstance(d, Abort) and "its nodes.conf is gone" in str(d.error)


def test_a_restart_fixes_a_stale_own_view_with_a_meet_from_the_temporary_node() -> None:
    es = _a_back_as_replica_of_t()
    sv = survey(
        es,
        with_temp=True,
        pods={"cache-0": back_on_new_node()},
        override={(A, A): entry(A, "slave", master=T)},
    )
    d = decide(a_round("a_restart", sv))
    assert isinstance(d, Wait) and d.actions == (Meet(TEMP, NEW_IP, REDIS_PORT),)
    assert f"own view still had its old IP {IPS[A]}" in d.notes[0]


def test_a_restart_waits_until_every_node_shows_a_at_its_new_ip() -> None:
    es = _a_back_as_replica_of_t()
    sv = survey(
        es,
        with_temp=True,
        pods={"cache-0": back_on_new_node()},
        override={(C, A): entry(A, "slave", master=T)},
    )
    d = decide(a_round("a_restart", sv))
    assert isinstance(d, Wait) and d.reason == f"{NAMES[C]} do not show cache-0 at {NEW_IP} yet"


def test_a_restart_waits_for_a_to_sync_then_fails_back() -> None:
    es = _a_back_as_replica_of_t()
    back = {"cache-0": back_on_new_node()}
    d = decide(a_round("a_restart", survey(es, with_temp=True, pods=back, synced=(False, "link down"))))
    assert isinstance(d, Wait) and d.reason == "cache-0 not synced from the temporary node: link down"
    d = decide(a_round("a_restart", survey(es, with_temp=True, pods=back)))
    assert isinstance(d, Act) and d.phase == "failover_to_a" and d.actions == (Failover("cache-0"),)
    assert d.state is not None and d.state.new_ip == NEW_IP and d.state.new_node == "new-a"


def test_a_restart_aborts_when_a_does_not_replicate_the_temporary_node() -> None:
    es = _a_back_as_replica_of_t()
    es[A] = entry(A, "slave", master=B, ip=NEW_IP)
    d = decide(a_round("a_restart", survey(es, with_temp=True, pods={"cache-0": back_on_new_node()})))
    assert isinstance(d, Abort) and "does not replicate the temporary node" in str(d.error)


# --- failover_to_a ------------------------------------------------------------------------------
def _failed_back() -> dict[str, NodeEntry]:
    es = after_failback()
    es[A] = entry(A, "master", slots=SLOTS[A], ip=NEW_IP)
    return es


def test_failover_to_a_waits_while_a_node_still_follows_the_temporary_node() -> None:
    es = _failed_back()
    es[B] = entry(B, "slave", master=T)
    sv = survey(es, with_temp=True, pods={"cache-0": back_on_new_node()})
    d = decide(a_round("failover_to_a", sv))
    assert (
        isinstance(d, Wait)
        and d.reason == f"nodes still follow the temporary node in {', '.join(sorted(NAMES[n] for n in es))}"
    )


def test_failover_to_a_forgets_the_temporary_node_everywhere_in_one_go_then_deletes_it() -> None:
    sv = survey(_failed_back(), with_temp=True, pods={"cache-0": back_on_new_node()})
    d = decide(a_round("failover_to_a", sv))
    assert isinstance(d, Act) and d.phase == "temp_remove"
    assert d.actions == (Forget(EVERYONE[:-1], T), DeleteTemp(TEMP))


def test_failover_to_a_after_an_earlier_attempt_deleted_the_temporary_pod() -> None:
    d = decide(a_round("failover_to_a", survey(_failed_back(), pods={"cache-0": back_on_new_node()})))
    assert isinstance(d, Act) and d.phase == "temp_remove" and d.actions == ()


# --- temp_remove --------------------------------------------------------------------------------
def _forgotten() -> dict[str, NodeEntry]:
    es = healthy_entries()
    es[A] = entry(A, "master", slots=SLOTS[A], ip=NEW_IP)
    return es


def test_temp_remove_deletes_a_temporary_pod_still_there_and_waits_for_it() -> None:
    d = decide(a_round("temp_remove", survey(_forgotten(), with_temp=True)))
    assert isinstance(d, Wait) and d.actions == (DeleteTemp(TEMP),)
    terminating = pod(T, terminating=True, running=False, state="terminating")
    d = decide(a_round("temp_remove", survey(_forgotten(), pods={TEMP: terminating})))
    assert isinstance(d, Wait) and d.actions == () and d.reason == f"temporary pod {TEMP} is terminating"


def test_temp_remove_forgets_again_where_the_temporary_node_is_still_listed() -> None:
    es = {**_forgotten(), T: entry(T, "slave", master=A)}
    sv = survey(
        es, pods={"cache-0": back_on_new_node()}, override={(n, T): None for n in es if n not in (T, C)}
    )
    d = decide(a_round("temp_remove", sv))
    assert isinstance(d, Wait) and d.actions == (Forget((NAMES[C],), T),)


def test_temp_remove_waits_for_a_handshake_still_open_to_the_temporary_nodes_address() -> None:
    es = {**_forgotten(), "9" * 40: entry("9" * 40, "handshake", "master", ip=IPS[T])}
    sv = survey(
        es, pods={"cache-0": back_on_new_node()}, override={(n, "9" * 40): None for n in es if n != B}
    )
    d = decide(a_round("temp_remove", sv))
    assert (
        isinstance(d, Wait)
        and d.reason == f"{NAMES[B]} still shake hands with the temporary node's address {IPS[T]}"
    )


def test_temp_remove_waits_for_cluster_state_ok_everywhere_then_is_done() -> None:
    back = {"cache-0": back_on_new_node()}
    d = decide(a_round("temp_remove", survey(_forgotten(), pods=back, states={"cache-3": "fail"})))
    assert isinstance(d, Wait) and d.reason == "cache-3: cluster_state:fail"
    d = decide(a_round("temp_remove", survey(_forgotten(), pods=back)))
    assert isinstance(d, Act) and d.phase == "done" and d.state is not None and d.state.total_s == 30.0
    assert "temporary node gone from all 6 nodes" in d.notes[0]


# --- restart (a replica, or a pod found deleted) ------------------------------------------------
def _replica_back() -> dict[str, NodeEntry]:
    es = healthy_entries()
    es[B] = entry(B, "slave", master=A, ip="10.2.0.11")
    return es


def _restart(sv: Survey) -> Decision:
    return decide(a_round("restart", sv, pod_name="cache-1", uid="uid-cache-1", node_id=B, kind="replica"))


def test_restart_waits_for_a_lagging_replica() -> None:
    back = {"cache-1": pod(B, uid="new", ip="10.2.0.11", node="new-b")}
    d = _restart(survey(_replica_back(), pods=back, synced=(False, "offset 5, master's 0.1s earlier 9")))
    assert isinstance(d, Wait) and d.reason == "cache-1 not synced: offset 5, master's 0.1s earlier 9"


def test_restart_fixes_a_stale_own_view_with_a_meet_from_a_peer() -> None:
    back = {"cache-1": pod(B, uid="new", ip="10.2.0.11", node="new-b")}
    sv = survey(_replica_back(), pods=back, override={(B, B): entry(B, "slave", master=A)})
    d = _restart(sv)
    assert isinstance(d, Wait) and d.actions == (Meet(NAMES[A], "10.2.0.11", REDIS_PORT),)


def test_restart_is_done_once_synced_and_announced_everywhere() -> None:
    back = {"cache-1": pod(B, uid="new", ip="10.2.0.11", node="new-b")}
    d = _restart(survey(_replica_back(), pods=back))
    assert isinstance(d, Act) and d.phase == "done" and d.state is not None and d.state.new_node == "new-b"


def test_an_unknown_phase_aborts() -> None:
    r = a_round("start", survey())
    d = decide(replace(r, move=r.move.model_copy(update={"phase": "nope"})))
    assert isinstance(d, Abort) and "unknown phase 'nope'" in str(d.error)
