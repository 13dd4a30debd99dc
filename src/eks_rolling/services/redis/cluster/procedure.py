"""ClusterProcedure: each round surveys the group (survey.py), decides the move's phase
(decide.py, pure) and runs what it decided (act.py); every phase is decided afresh from what
it reads, and each action is safe to repeat, because Step Functions may run a round twice."""

from __future__ import annotations

import logging

from ....errors import (
    DrainTimeoutError,
    RedisGroupUnhealthyError,
    RedisMoveTimeoutError,
    RedisSwitchoverError,
    RedisTempNodeError,
)
from ....models import RedisMove
from ..procedure import Advance, GroupHealth, RedisEnv, Wait, carry_out, timed_out
from . import decide
from .act import Executor
from .cleanup import abort, cleanup_temps
from .decide import WAIT_S, Decision, Round
from .model import Action, ClusterMoveState
from .survey import READ_ERRORS, survey

log = logging.getLogger(__name__)

# The errors after which the move's temporary node leaves the cluster before the error surfaces.
ABORTING = (
    DrainTimeoutError,
    RedisMoveTimeoutError,
    RedisSwitchoverError,
    RedisGroupUnhealthyError,
    RedisTempNodeError,
)
WAITING_MAX_CHARS = 300  # what a phase waits for, kept in the execution history for people


def settle(move: RedisMove, env: RedisEnv, wait: Wait[ClusterMoveState, Action], notes: list[str]) -> Advance:
    """`move` after a Wait: its state kept and the reason recorded; past the phase's deadline
    the wait's error."""
    if wait.state is not None:
        move = move.model_copy(update={"data": wait.state.dump()})
    if timed_out(move, env.now):
        deadline = move.phase_deadline.isoformat() if move.phase_deadline else "?"
        raise wait.error(
            f"Redis Cluster pod {move.ref}: phase {move.phase} did not complete by {deadline}: {wait.reason}"
        )
    log.info("redis cluster %s at %s: waiting for %s", move.ref, move.phase, wait.reason)
    waiting = wait.reason[:WAITING_MAX_CHARS]
    return Advance(move.model_copy(update={"data": {**move.data, "waiting": waiting}}), notes, wait.wait_s)


def apply(move: RedisMove, env: RedisEnv, decision: Decision, ex: Executor) -> Advance:
    """Run what `decision` asks and give the move its next state."""
    got = carry_out(move, env, decision, ex.run, settle)
    if isinstance(got, Advance):
        return got
    act, out = got
    state = act.state or ClusterMoveState.of(move)
    notes = [*act.notes, *out.notes]
    wait_s = act.wait_s or WAIT_S  # gossip needs a moment: never look again at once
    if act.phase == "done":
        data = {k: v for k, v in state.dump().items() if k != "waiting"}
        done = move.model_copy(update={"phase": "done", "done": True, "phase_deadline": None, "data": data})
        return Advance(done, notes, wait_s)
    nxt = move.model_copy(update={"phase": act.phase, "phase_deadline": env.deadline(), "data": state.dump()})
    return Advance(nxt, notes, wait_s)


class ClusterProcedure:
    kind = "cluster"

    def order(self, move: RedisMove) -> int:
        # Roles are read live (a replica may have become master since discovery): one order.
        return 0

    def health(self, env: RedisEnv) -> GroupHealth:
        problems, masters = decide.health(survey(env, None), env.group.namespace, env.ctx.taint_value)
        return GroupHealth(problems=problems, master_pods=masters)

    def advance(self, move: RedisMove, env: RedisEnv) -> Advance:
        state = ClusterMoveState.of(move)  # a bad state stops here, named
        if move.phase_deadline is None:
            move = move.model_copy(update={"phase_deadline": env.deadline()})
        try:
            try:
                sv = survey(env, state.temp, leftovers=move.phase == "start")
                r = Round(move, state, sv, env.now, env.deps.wall(), env.ctx.taint_value)
                return apply(move, env, decide.decide(r), Executor(env, sv))
            except READ_ERRORS as exc:
                # A node restarting or briefly unreachable: the phase re-reads everything (and
                # only acts again where its decision allows) next round, until its deadline.
                why = f"a node did not answer ({type(exc).__name__}: {exc})"
                return settle(move, env, Wait(why, WAIT_S), [])
        except ABORTING as exc:
            notes = abort(move, env)
            raise type(exc)(f"{exc} | cleanup: {'; '.join(notes) or 'nothing to clean up'}") from exc

    def cleanup(self, env: RedisEnv) -> list[str]:
        return cleanup_temps(env)
