"""SentinelProcedure: each round surveys the group (survey.py), decides the move's phase
(decide.py, pure) and runs what it decided (act.py); cleanup the same way, in one bounded
invocation."""

from __future__ import annotations

from ....aws.clients import aws_client
from ....aws.lock import AsgLock
from ....models import RedisMove
from ..procedure import Advance, GroupHealth, RedisEnv, Wait, carry_out, timed_out
from . import decide
from .act import Executor
from .decide import SENTINEL_INFO_PERIOD_MS, WAIT_POD_S, Decision, Round
from .model import TRANSIENT, Action, SentinelMoveState
from .survey import READ_ERRORS, survey

# Cleanup's reset, in one invocation: per sentinel, up to one INFO period to reach its reset
# window and re-learn the replicas, plus a few hello periods (2 s) to re-learn its peers.
CLEANUP_RESET_BUDGET_S = SENTINEL_INFO_PERIOD_MS // 1000 + 3 * 2
# Cleanup first lets a pod the failed roll had just evicted come back (a restart, a resync).
CLEANUP_SETTLE_S = 30
CLEANUP_POLL_S = 0.5


def settle(
    move: RedisMove, env: RedisEnv, wait: Wait[SentinelMoveState, Action], notes: list[str]
) -> Advance:
    """`move` after a Wait: its state kept, the reason recorded, its phase's clock started on
    its first timed wait; past the deadline the wait's error."""
    if wait.state is not None:
        move = move.model_copy(update={"data": wait.state.dump()})
    if wait.restart_clock:
        move = move.model_copy(update={"phase_deadline": env.deadline()})
    if wait.timed and move.phase_deadline is None:
        move = move.model_copy(update={"phase_deadline": env.deadline()})
    elif wait.timed and timed_out(move, env.now):
        raise wait.error(f"{move.ref}: phase {move.phase} timed out: {wait.reason}")
    return Advance(
        move.model_copy(update={"data": {**move.data, "waiting": wait.reason}}), notes, wait.wait_s
    )


def apply(move: RedisMove, env: RedisEnv, decision: Decision, ex: Executor) -> Advance:
    """Run what `decision` asks and give the move its next state."""
    got = carry_out(move, env, decision, ex.run, settle)
    if isinstance(got, Advance):
        return got
    decision, out = got
    state = decision.state or SentinelMoveState.of(move).go()
    if out.switchovers:
        state = state.model_copy(update={"switchovers": [*(state.switchovers or []), *out.switchovers]})
    notes = [*decision.notes, *out.notes]
    if decision.phase == "done":
        data = {k: v for k, v in state.dump().items() if k not in TRANSIENT}
        done = move.model_copy(update={"phase": "done", "done": True, "phase_deadline": None, "data": data})
        return Advance(done, notes, 0)
    nxt = move.model_copy(
        update={"phase": decision.phase, "phase_deadline": env.deadline(), "data": state.dump()}
    )
    return Advance(nxt, notes, decision.wait_s)


class SentinelProcedure:
    kind = "sentinel"

    def order(self, move: RedisMove) -> int:
        return decide.order(move.role)

    def health(self, env: RedisEnv) -> GroupHealth:
        sv, probe = survey(env)
        try:
            return decide.health(sv, env.group.namespace)
        finally:
            probe.close()

    def advance(self, move: RedisMove, env: RedisEnv) -> Advance:
        return self._round(move, env, env.deps.wall())

    def _round(self, move: RedisMove, env: RedisEnv, now: float) -> Advance:
        sv, probe = survey(env)
        try:
            r = Round(
                move, SentinelMoveState.of(move), sv, now, env.group.master_set, env.settings.redis_failback
            )
            return apply(move, env, decide.decide(r), Executor(env, sv, probe, move.ref))
        except READ_ERRORS as exc:
            # Every phase is safe to run again: a Redis hiccup is "not yet" until the deadline.
            return settle(move, env, Wait(f"{type(exc).__name__}: {exc}", WAIT_POD_S), [])
        finally:
            probe.close()

    # --- after success or failure ---------------------------------------------------------------
    def cleanup(self, env: RedisEnv) -> list[str]:
        g = env.group
        holder = AsgLock(aws_client("dynamodb", env.settings), env.settings.lock_table, scope="redis").holder(
            g.ref
        )
        if holder and not holder.startswith(env.ctx.execution_id + "#"):
            return [f"Redis group {g.ref}: left alone, {holder} is moving it"]
        sv, probe = survey(env)
        try:
            actions, notes = decide.cleanup(sv, g.ref)
            out = Executor(env, sv, probe, g.ref).run(actions)
        finally:
            probe.close()
        notes += out.notes
        if out.unpaused:
            notes.append(f"Redis group {g.ref}: CLIENT UNPAUSE on {out.unpaused} data pods")
        return notes + self._clear_stale(env)

    def _clear_stale(self, env: RedisEnv) -> list[str]:
        """A roll that stopped before the group's last move never ran the `reset` phase: every
        sentinel still lists the moved pods' old addresses. Clear them as that phase does (one
        sentinel at a time, each converged before the next), here in one bounded invocation."""
        g = env.group
        deadline = env.monotonic() + CLEANUP_SETTLE_S
        while True:
            sv, probe = survey(env)
            try:
                master, down = sv.master(), sorted(p.name for p in sv.pods.values() if not p.up)
                stale = sv.stale()
            finally:
                probe.close()
            if master is not None and not stale:
                return []
            if master is not None and not down:
                break
            # A pod the failed roll had just evicted is coming back: reset once it is there.
            if env.monotonic() > deadline:
                why = f"pods {down} are not up" if master is not None else "no single master"
                return [f"WARNING: Redis group {g.ref}: sentinel entries left as they are: {why}"]
            env.sleep(CLEANUP_POLL_S)
        notes = [f"Redis group {g.ref}: stale sentinel entries to clear, one sentinel at a time: {stale}"]
        move = RedisMove(
            namespace=g.namespace,
            group=g.name,
            kind="sentinel",
            pod=f"{g.name}-sentinels",
            role="sentinel",
            statefulset="",
            phase="reset",
            data={"reset_todo": sorted(stale)},
        )
        deadline = env.monotonic() + CLEANUP_RESET_BUDGET_S * len(stale)
        while True:
            adv = self._round(move, env, env.deps.wall())
            notes += [f"Redis group {g.ref}: {a}" for a in adv.actions]
            move = adv.move
            if move.done:
                return notes
            if env.monotonic() > deadline:
                return [
                    *notes,
                    f"WARNING: Redis group {g.ref}: sentinels not converged: {move.data.get('waiting')}",
                ]
            env.sleep(CLEANUP_POLL_S)
