"""The Redis Cluster cleanup's decisions as input/output pairs (a Survey made of values in, a
decision out): when the temporary node may be forgotten, when A takes its slots back first,
what keeps it, how its id is found, and whose own view needs a MEET."""

from __future__ import annotations

from eks_rolling.labels import REDIS_PORT, REDIS_TEMP_FOR_NODE_ID, REDIS_TEMP_FOR_POD
from eks_rolling.services.redis.cluster.cleanup import failback_blocker, removal, stale_selves, temp_id_of
from eks_rolling.services.redis.cluster.model import Announce, Failover, Meet
from eks_rolling.services.redis.cluster.survey import Pod
from eks_rolling.services.redis.procedure import Act, Wait
from tests.factories.cluster_survey import TEMP, pod, survey
from tests.factories.cluster_views import (
    IPS,
    NAMES,
    A,
    B,
    C,
    T,
    after_failback,
    after_failover_to_temp,
    entry,
    healthy_entries,
)


def _temp() -> Pod:
    return pod(T, annotations={REDIS_TEMP_FOR_POD: NAMES[A], REDIS_TEMP_FOR_NODE_ID: A})


def test_a_temporary_master_gives_its_slots_back_to_a_synced_a_first() -> None:
    sv = survey(after_failover_to_temp(), pods={TEMP: _temp()})
    decision, holding = removal(sv, TEMP, T, set(), failover_due=True)
    assert holding and isinstance(decision, Wait) and decision.actions == (Failover(NAMES[A]),)
    assert "CLUSTER FAILOVER on cache-0 to take its slots back" in decision.notes[0]
    # sent less than a manual failover's timeout ago: not again
    decision, _ = removal(sv, TEMP, T, set(), failover_due=False)
    assert isinstance(decision, Wait) and decision.actions == ()


def test_a_temporary_master_is_kept_while_a_cannot_take_its_slots_back() -> None:
    sv = survey(after_failover_to_temp(), pods={TEMP: _temp()}, synced=(False, "link down"))
    decision, holding = removal(sv, TEMP, T, set(), failover_due=True)
    assert holding and isinstance(decision, Wait) and decision.reason == "not synced: link down"
    assert decision.actions == ()


def test_the_temporary_node_is_forgotten_once_it_holds_no_slots_and_nobody_follows_it() -> None:
    es = after_failback()
    es[B] = entry(B, "slave", master=T)
    decision, holding = removal(survey(es, pods={TEMP: _temp()}), TEMP, T, set(), failover_due=True)
    assert (
        not holding and isinstance(decision, Wait) and decision.reason.startswith("cache-0, cache-0-eksr-tmp")
    )
    decision, _ = removal(survey(after_failback(), pods={TEMP: _temp()}), TEMP, T, set(), failover_due=True)
    assert isinstance(decision, Act) and decision.phase == "forget"


def test_a_role_others_lag_behind_on_is_announced_once_and_quietly() -> None:
    es = after_failback()
    sv = survey(es, pods={TEMP: _temp()}, override={(C, A): entry(A, "slave", master=T)})
    decision, _ = removal(sv, TEMP, T, set(), failover_due=True)
    announce = [a for a in decision.actions if isinstance(a, Announce)]
    assert [a.pod for a in announce] == [NAMES[A]] and announce[0].quiet
    decision, _ = removal(sv, TEMP, T, {NAMES[A]}, failover_due=True)
    assert not any(isinstance(a, Announce) for a in decision.actions)


def test_why_a_cannot_fail_back() -> None:
    es = after_failover_to_temp()
    assert failback_blocker(survey(es, pods={TEMP: _temp()}), NAMES[A], A, T, TEMP) is None
    assert failback_blocker(survey(es, pods={TEMP: _temp(), NAMES[A]: None}), NAMES[A], A, T, TEMP) == (
        "it is not running"
    )
    assert failback_blocker(survey(es, pods={TEMP: _temp()}), NAMES[A], "9" * 40, T, TEMP) == (
        "it has another node id"
    )
    assert failback_blocker(survey(es, pods={TEMP: None}), NAMES[A], A, T, TEMP) == (
        "the temporary node does not answer"
    )
    es[A] = entry(A, "slave", master=B)
    assert failback_blocker(survey(es, pods={TEMP: _temp()}), NAMES[A], A, T, TEMP) == (
        "it does not replicate the temporary node"
    )


def test_the_temporary_nodes_id_from_itself_from_the_others_or_none() -> None:
    assert temp_id_of(survey(after_failback(), pods={TEMP: _temp()}), TEMP) == T
    # T does not answer (its view not surveyed): the others know it by its address
    sv = survey(after_failback(), pods={TEMP: _temp()})
    del sv.answers[("nodes", TEMP)]
    assert temp_id_of(sv, TEMP) == T
    # never met anyone: only itself in its view, and unknown to the others
    alone = survey({**healthy_entries(), T: entry(T, "master")}, pods={TEMP: _temp()})
    alone.answers[("nodes", TEMP)] = [entry(T, "master", "myself")]
    for name in NAMES.values():
        if name != TEMP:
            alone.answers[("nodes", name)] = [e for e in alone.answers[("nodes", name)] if e.id != T]
    assert temp_id_of(alone, TEMP) is None
    assert temp_id_of(survey(after_failback()), TEMP) is None  # no pod


def test_a_pod_whose_own_view_shows_an_old_ip_gets_a_meet_from_a_peer() -> None:
    es = healthy_entries()
    es[B] = entry(B, "slave", master=A, ip="10.2.0.11")
    sv = survey(
        es,
        pods={NAMES[B]: pod(B, ip="10.2.0.11")},
        override={(B, B): entry(B, "slave", master=A, ip=IPS[B])},
    )
    stale, meets, old = stale_selves(sv)
    assert stale == [NAMES[B]] and meets == {NAMES[B]: Meet(NAMES[A], "10.2.0.11", REDIS_PORT)}
    assert old == {NAMES[B]: IPS[B]}
    assert stale_selves(survey()) == ([], {}, {})
