"""A Redis Cluster round's decision turned into the move's next state: a wait past the phase's
deadline raises the wait's error, a wait keeps its state and says why, a next phase gets a new
deadline and a fresh count, a finished move keeps its record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from eks_rolling.errors import DrainTimeoutError, RedisGroupUnhealthyError, RedisMoveTimeoutError
from eks_rolling.services.redis.cluster.act import Executor
from eks_rolling.services.redis.cluster.decide import decide
from eks_rolling.services.redis.cluster.procedure import apply, settle
from eks_rolling.services.redis.procedure import Act, Advance, Evict, Outcome, RedisEnv, Wait, carry_out
from eks_rolling.settings import Settings
from tests.factories.cluster_survey import NOW, a_round, survey


def _env(now: Any = NOW) -> RedisEnv:
    none: Any = None  # settle, and apply without actions, touch neither Kubernetes nor Redis
    return RedisEnv(none, none, none, none, none, now, Settings(redis_phase_timeout_s=60))


def test_a_wait_keeps_the_phase_until_its_deadline_then_raises_its_error() -> None:
    move = a_round("temp_join", survey()).move.model_copy(update={"phase_deadline": NOW})
    adv = settle(move, _env(), Wait("2 of 7 nodes do not know it", 1), [])
    assert adv.move.phase == "temp_join" and adv.move.data["waiting"] == "2 of 7 nodes do not know it"
    with pytest.raises(RedisMoveTimeoutError, match=r"phase temp_join did not complete by .*: 2 of 7"):
        settle(move, _env(NOW + timedelta(seconds=1)), Wait("2 of 7 nodes do not know it", 1), [])


def test_an_unhealthy_group_and_a_refused_eviction_time_out_with_their_own_errors() -> None:
    move = a_round("start", survey()).move.model_copy(update={"phase_deadline": NOW})
    later = _env(NOW + timedelta(seconds=1))
    with pytest.raises(RedisGroupUnhealthyError):
        settle(move, later, Wait("cache-2: cluster_state:fail", 1, error=RedisGroupUnhealthyError), [])
    with pytest.raises(DrainTimeoutError, match="PDB cache-pdb"):
        settle(move, later, Wait("PDB cache-pdb allows 0", 4, error=DrainTimeoutError), [])


def test_a_long_reason_is_kept_bounded() -> None:
    adv = settle(a_round("temp_join", survey()).move, _env(), Wait("x" * 1000, 1), [])
    assert len(adv.move.data["waiting"]) == 300


def test_the_next_phase_gets_a_new_deadline_and_a_fresh_count() -> None:
    r = a_round("temp_join", survey(), throttled=3, announced=["cache-1"], waiting="w")
    ex = Executor(_env(), r.survey)
    adv = apply(r.move, _env(), Act("temp_sync", state=r.state.go()), ex)
    assert adv.move.phase == "temp_sync" and adv.move.phase_deadline == NOW + timedelta(seconds=60)
    assert not {"throttled", "announced", "waiting"} & set(adv.move.data) and adv.wait_s == 1


def test_done_keeps_the_record_without_the_deadline_or_the_last_wait() -> None:
    r = a_round("temp_remove", survey(), waiting="w")
    d = decide(r)  # the default survey: A master again everywhere, T forgotten
    adv = apply(r.move, _env(), d, Executor(_env(), r.survey))
    assert adv.move.done and adv.move.phase_deadline is None and "waiting" not in adv.move.data
    assert adv.move.data["total_s"] == 30.0 and adv.move.data["new_node"] == "new-a"


def test_a_refused_eviction_of_a_pod_still_the_old_one_backs_off_and_times_out_as_a_drain() -> None:
    # a_restart finds A still the old pod: its eviction again, which a PDB refuses
    r = a_round("a_restart", survey(), throttled=1)
    d = decide(r)
    assert isinstance(d, Wait) and d.actions == (Evict("cache-0", "uid-cache-0"),)
    blocked = Outcome(blocked="PodDisruptionBudget ns/cache allows 0")
    adv = carry_out(r.move, _env(), d, lambda actions: blocked, settle)
    assert isinstance(adv, Advance) and adv.move.data["throttled"] == 2 and adv.wait_s >= 2
    late = r.move.model_copy(update={"phase_deadline": NOW - timedelta(seconds=1)})
    with pytest.raises(DrainTimeoutError, match="PodDisruptionBudget ns/cache"):
        carry_out(late, _env(), d, lambda actions: blocked, settle)
