"""A round's decision turned into the move's next state: deadlines of timed waits, planned
waits that do not count, the state a wait keeps, and what a finished move keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eks_rolling.errors import DrainTimeoutError, RedisMoveTimeoutError
from eks_rolling.services.redis.procedure import Act, RedisEnv, Wait, refused
from eks_rolling.services.redis.sentinel import decide
from eks_rolling.services.redis.sentinel.act import Executor
from eks_rolling.services.redis.sentinel.model import SentinelMoveState
from eks_rolling.services.redis.sentinel.procedure import apply, settle
from eks_rolling.settings import Settings
from tests.factories.sentinel_survey import R0, a_round, group

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _env(now: datetime = NOW) -> RedisEnv:
    none: Any = None  # settle and apply without actions touch neither Kubernetes nor Redis
    return RedisEnv(none, none, none, none, none, now, Settings(redis_phase_timeout_s=60))


def test_a_timed_wait_starts_the_phase_clock_then_times_out_past_it() -> None:
    move = a_round(group(), R0, "rejoin").move
    first = settle(move, _env(), Wait("not back", 1), [])
    assert first.move.phase_deadline == NOW + timedelta(seconds=60)
    assert first.move.data["waiting"] == "not back" and first.wait_s == 1
    settle(
        first.move, _env(NOW + timedelta(seconds=60)), Wait("not back", 1), []
    )  # at the deadline: still waits
    with pytest.raises(RedisMoveTimeoutError, match=r"phase rejoin timed out: not back"):
        settle(first.move, _env(NOW + timedelta(seconds=61)), Wait("not back", 1), [])


def test_a_refused_eviction_times_out_as_a_drain_does() -> None:
    move = a_round(group(), R0, "move").move.model_copy(update={"phase_deadline": NOW})
    with pytest.raises(DrainTimeoutError, match="PDB cache-pdb"):
        settle(move, _env(NOW + timedelta(seconds=1)), refused("PDB cache-pdb allows 0", 4), [])


def test_a_planned_wait_never_times_out_and_keeps_its_state() -> None:
    move = a_round(group(), R0, "switchover").move.model_copy(update={"phase_deadline": NOW})
    state = SentinelMoveState.of(move).model_copy(update={"align_since": 5.0})
    adv = settle(move, _env(NOW + timedelta(hours=1)), Wait("timing", 3, state=state, timed=False), [])
    assert adv.move.data["align_since"] == 5.0 and adv.move.phase_deadline == NOW


def test_done_drops_the_transient_state_and_keeps_the_record() -> None:
    r = a_round(
        group(), R0, "reset", reset_todo=[], reset_sent="x", reset_at=1.0, waiting="w", flow="replica"
    )
    ex = Executor(_env(), r.survey, None, r.move.ref)  # type: ignore[arg-type]
    adv = apply(r.move, _env(), Act("done", notes=("ok",), state=r.state), ex)
    assert adv.move.done and adv.move.phase == "done" and adv.move.phase_deadline is None
    assert adv.move.data == {"uid": f"uid-{R0}", "node": f"old-{R0}", "ip": "10.0.0.11", "flow": "replica"}


def test_the_next_phase_gets_a_fresh_deadline_and_the_same_json_keys() -> None:
    r = a_round(group(), R0, "start", waiting="earlier")
    ex = Executor(_env(), r.survey, None, r.move.ref)  # type: ignore[arg-type]
    adv = apply(r.move, _env(), decide.decide(r), ex)
    assert (adv.move.phase, adv.move.phase_deadline) == ("move", NOW + timedelta(seconds=60))
    assert adv.move.data == {"uid": f"uid-{R0}", "node": f"old-{R0}", "ip": "10.0.0.11", "flow": "replica"}
