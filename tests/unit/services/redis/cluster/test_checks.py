"""The checks the Redis Cluster phase decisions are made of, as input/output pairs: CLUSTER NODES
views (values only, no network, no process) in, go or why-not-yet out. One section per phase."""

from __future__ import annotations

from eks_rolling.labels import REDIS_PORT
from eks_rolling.services.redis.cluster import checks
from eks_rolling.services.redis.cluster.checks import (
    cluster_problems,
    lagging_nodes,
    roles_agree,
    temp_holds_slots,
)
from eks_rolling.services.redis.cluster.survey import FAILOVER_ATTEMPTS, FAILOVER_RETRY_S
from tests.factories.cluster_views import (
    NAMES,
    SLOTS,
    SLOTS_A,
    A,
    B,
    C,
    T,
    after_failback,
    after_failover_to_temp,
    entry,
    healthy_entries,
    views,
    with_temp_as_replica_of_a,
)

TEMP = NAMES[T]


# --- start --------------------------------------------------------------------------------------
def test_start_a_master_of_slots_moves_through_a_temporary_node() -> None:
    assert checks.start_path(entry(A, "master", "myself", slots=SLOTS[A])) == ("temp_start", "master")


def test_start_a_replica_or_an_empty_master_is_evicted_and_awaited() -> None:
    assert checks.start_path(entry(B, "slave", "myself", master=A)) == ("restart", "replica")
    assert checks.start_path(entry(A, "master", "myself")) == ("restart", "empty-master")


def test_start_is_blocked_by_a_master_without_replica_and_a_failing_node() -> None:
    es = healthy_entries()
    del es[B]
    vs = views(es, override={(C, A): entry(A, "master", "fail?", slots=SLOTS[A])})
    problems = cluster_problems(vs, {}, None)
    assert f"{NAMES[A]}: master {A[:8]} (0-5460) has no replica" in problems
    assert f"{NAMES[C]} flags node {A[:8]} (10.1.0.10) fail?,master" in problems


def test_start_names_a_leftover_temporary_node() -> None:
    vs = views(with_temp_as_replica_of_a(), seen_by=[A, B])
    assert cluster_problems(vs, {}, {A, B})[0].startswith(f"{NAMES[A]} knows node {T[:8]} (10.1.0.20)")


# --- temp_start ---------------------------------------------------------------------------------
def test_temp_start_meets_a_first_then_every_other_running_pod_once() -> None:
    a, b, c = ("10.1.0.10", REDIS_PORT), ("10.1.0.11", REDIS_PORT), ("10.1.0.9", REDIS_PORT)
    assert checks.peers_to_meet(a, [b, a, c, b]) == [a, b, c]  # A first, then by address


# --- temp_join ----------------------------------------------------------------------------------
def test_temp_join_waits_until_every_peer_knows_the_temporary_node() -> None:
    es = with_temp_as_replica_of_a()
    vs = views(es, override={(C, T): None, (B, T): entry(T, "handshake", "master")})
    assert (
        checks.unaware_of(vs, T)
        == f"2 of 7 nodes do not know the temporary node yet ({NAMES[B]}, {NAMES[C]})"
    )


def test_temp_join_goes_once_every_node_knows_it() -> None:
    assert checks.unaware_of(views(with_temp_as_replica_of_a()), T) is None


# --- temp_sync ----------------------------------------------------------------------------------
def test_temp_sync_waits_for_masters_that_do_not_list_it_as_as_replica_yet() -> None:
    vs = views(with_temp_as_replica_of_a(), override={(C, T): entry(T, "master")})
    assert checks.not_listed(vs, T, A) == [NAMES[C]]
    assert checks.not_listed(views(with_temp_as_replica_of_a()), T, A) == []


def test_temp_sync_sees_a_failover_an_earlier_attempt_sent() -> None:
    assert checks.took_over(views(after_failover_to_temp()), TEMP, SLOTS_A)
    assert not checks.took_over(views(with_temp_as_replica_of_a()), TEMP, SLOTS_A)


# --- failover_to_temp ---------------------------------------------------------------------------
def test_failover_to_temp_not_yet_agreed_names_the_node_that_disagrees() -> None:
    vs = views(after_failover_to_temp(), override={(C, A): entry(A, "master", slots=SLOTS[A])})
    assert roles_agree(vs, T, A, SLOTS_A, replica_may_be_gone=False) == f"{NAMES[C]} sees {A[:8]} as master"


def test_failover_to_temp_agreed_everywhere() -> None:
    assert roles_agree(views(after_failover_to_temp()), T, A, SLOTS_A, replica_may_be_gone=False) is None


def test_a_failover_is_awaited_then_sent_again_then_given_up() -> None:
    assert checks.retry(100.0 + FAILOVER_RETRY_S - 0.1, 100.0, 1) == "wait"
    assert checks.retry(100.0 + FAILOVER_RETRY_S, 100.0, 1) == "again"
    assert checks.retry(100.0 + FAILOVER_RETRY_S, 100.0, FAILOVER_ATTEMPTS) == "give-up"


def test_a_role_others_have_not_caught_up_with_is_announced() -> None:
    vs = views(after_failover_to_temp(), override={(C, T): entry(T, "slave", master=A)})
    assert lagging_nodes(vs) == [TEMP]


# --- a_restart (and restart) --------------------------------------------------------------------
def test_a_restart_waits_for_every_node_to_show_a_at_its_new_ip() -> None:
    es = after_failover_to_temp()
    es[A] = entry(A, "slave", master=T, ip="10.1.0.30")
    vs = views(
        es,
        override={
            (C, A): entry(A, "slave", master=T),
            (B, A): entry(A, "slave", "noaddr", master=T, ip="10.1.0.30"),
        },
    )
    assert checks.not_announced(vs, A, "10.1.0.30") == [NAMES[B], NAMES[C]]
    assert checks.not_announced(views(es), A, "10.1.0.30") == []


def test_a_restart_fixes_a_stale_own_view() -> None:
    assert checks.stale_self(entry(A, "slave", "myself", master=T), "10.1.0.30") == "10.1.0.10"
    assert checks.stale_self(entry(A, "slave", "myself", master=T, ip="10.1.0.30"), "10.1.0.30") is None


# --- failover_to_a ------------------------------------------------------------------------------
def test_failover_to_a_waits_while_a_node_still_follows_the_temporary_node() -> None:
    vs = views(after_failback(), override={(C, B): entry(B, "slave", master=T)})
    assert (
        checks.failback_pending(vs, A, T, TEMP, SLOTS_A)
        == f"nodes still follow the temporary node in {NAMES[C]}"
    )


def test_failover_to_a_waits_for_the_temporary_node_to_see_itself_as_replica() -> None:
    vs = views(after_failback(), override={(T, T): entry(T, "master")})
    assert checks.failback_pending(vs, A, T, TEMP, SLOTS_A) == f"{TEMP} sees {T[:8]} as master,myself"


def test_failover_to_a_goes_once_a_is_master_everywhere_even_where_t_is_forgotten() -> None:
    vs = views(after_failback(), override={(C, T): None})
    assert checks.failback_pending(vs, A, T, TEMP, SLOTS_A) is None


# --- temp_remove --------------------------------------------------------------------------------
def test_temp_remove_forgets_again_where_the_temporary_node_is_still_listed() -> None:
    vs = views(healthy_entries())
    vs[NAMES[C]].append(entry(T, "slave", "noaddr", master=A))  # C missed the FORGET
    assert checks.remembering(vs, T) == [NAMES[C]]
    assert checks.remembering(views(healthy_entries()), T) == []


def test_temp_remove_waits_for_uncovered_slots_to_be_served() -> None:
    es = healthy_entries()
    es[A] = entry(A, "master")
    assert f"{NAMES[C]}: 5461 of 16384 slots uncovered" in cluster_problems(views(es), {}, None)


# --- cleanup ------------------------------------------------------------------------------------
def test_cleanup_keeps_a_temporary_node_that_holds_slots() -> None:
    assert temp_holds_slots(views(after_failover_to_temp()), TEMP, T)
    assert not temp_holds_slots(views(after_failback()), TEMP, T)


def test_cleanup_holds_slots_judged_by_the_others_when_the_temporary_node_does_not_answer() -> None:
    vs = views(after_failover_to_temp(), seen_by=[A, B, C])
    assert temp_holds_slots(vs, TEMP, T)
    failed = views(
        after_failover_to_temp(),
        seen_by=[A, C],
        override={(C, T): entry(T, "master", "fail", slots=SLOTS[A])},
    )
    failed[NAMES[A]] = [e for e in failed[NAMES[A]] if e.id != T]
    assert not temp_holds_slots(failed, TEMP, T)


def test_cleanup_waits_for_nodes_that_still_follow_the_temporary_node() -> None:
    es = after_failback()
    es[B] = entry(B, "slave", master=T)
    assert checks.followers_of(views(es), T) == sorted(n for n in NAMES.values() if n != NAMES[B])
    assert checks.followers_of(views(after_failback()), T) == []
