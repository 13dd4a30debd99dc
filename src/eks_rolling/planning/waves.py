"""Waves: the plan's batches grouped into child executions, each sized to fit its own history.

A roll is a parent execution (resolve, lock, plan, pause, taint, restore) that runs each wave as a
child Standard execution (`states:startExecution.sync:2`, statemachine/roll_wave.asl.json). Each
child has its own 25,000-event history, so a roll of any size fits; the parent grows by a constant
per wave. Two numbers size a wave:

- its EXPECTED history (the planner's measured polling rounds, plan.estimate_history_events) stays
  under WAVE_HISTORY_BUDGET, so a wave's audit trail is easy to read and retries have room;
- its WORST case stays under HISTORY_GUARD_EVENTS: every polling loop of the wave may run at most
  `round_scale` times its measured rounds (the runtime guard, eks_rolling.guard, stops the wave
  with HistoryBudgetExceededError past that), and the wave's structural events plus all of its
  loops at their caps fit under the guard. A wave whose scale would be under GUARD_FACTOR is split.

Pure: no I/O. Names are given by the service (they carry the execution's name).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..models import NodeTarget, Plan, PlanRollOutput, Wave
from . import budget

# Expected events per child, from measured rounds: well under 25,000 so that retries, slow nodes
# and the guard's margin fit, and one child's history stays readable in the console.
WAVE_HISTORY_BUDGET: Final = 10_000
# Nothing may pass this: 80% of the 25,000 hard limit (an execution that reaches the limit fails
# with no Catch, hence no Rollback). The 5,000 left cover Task retries (3 events each).
HISTORY_GUARD_EVENTS: Final = 20_000
HARD_LIMIT: Final = 25_000
# A loop's cap is at least this many times its measured rounds (plan.ASSUMED_*): a slow node may
# poll 3x longer than the calibration before the guard stops the wave.
GUARD_FACTOR: Final = 3
# Loops per old node (MoveRedisPods, DrainNode, WaitOwnersReady) and per batch (WaitNewNodes).
LOOPS_PER_NODE: Final = 3
LOOPS_PER_BATCH: Final = 1
# The child's own events outside its loops: execution start/end, the batches Map, the final Pass.
EVENTS_PER_WAVE: Final = 12
# What one wave adds to the PARENT's history: Map iteration (2), CheckGate saying go (Task:
# entered, scheduled, started, succeeded, exited; its Choice: entered, exited), the
# startExecution.sync:2 Task (entered, scheduled, started, submitted, succeeded, exited), the
# Choice HasBake and the Succeed WaveDone (2 each). Each further check of a paused roll or a
# closed window adds 9 (Wait and the Task and Choice again).
PARENT_EVENTS_PER_WAVE: Final = 19
# The health gate after a wave (the Pass MarkRolled, CheckGate and its Choice): 9 events, and 9
# more for each further check (Wait, Task, Choice).
BAKE_EVENTS: Final = 9
BAKE_EVENTS_PER_ROUND: Final = 9
MAX_NAME: Final = 80  # StartExecution's name limit
# A stored plan's waves: one object per wave under this prefix (IAM grants only the prefix).
STORE_PREFIX: Final = "waves"
# A plan state larger than this (Settings.inline_plan_bytes' default) keeps its batches in S3.
INLINE_PLAN_BYTES: Final = 32 * 1024
_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class WaveShape:
    batches: tuple[tuple[NodeTarget, ...], ...]
    round_scale: int
    expected_events: int

    @property
    def nodes(self) -> int:
        return sum(len(b) for b in self.batches)


def assumed_rounds(node: NodeTarget | None = None) -> int:
    """Measured polling rounds of one loop (plan.ASSUMED_*): WaitNewNodes for a batch (no node),
    else the node's DrainNode and WaitOwnersReady (each), or its MoveRedisPods."""
    if node is None:
        return budget.ASSUMED_WAIT_ROUNDS_PER_BATCH
    return budget.ASSUMED_POLL_ROUNDS_PER_NODE


def redis_rounds(node: NodeTarget) -> int:
    return max(node.redis_rounds, 1)


def drain_rounds(node: NodeTarget) -> int:
    """DrainNode's rounds: the measured ones plus its wait for do-not-disrupt pods."""
    return assumed_rounds(node) + node.held_rounds


def loop_rounds(batches: Sequence[Sequence[NodeTarget]]) -> int:
    """Measured rounds of all of the wave's polling loops together."""
    per_batch = len(batches) * assumed_rounds()
    per_node = sum(assumed_rounds(n) + drain_rounds(n) + redis_rounds(n) for b in batches for n in b)
    return per_batch + per_node


def node_events(hook_steps: int = 0) -> int:
    """A node's events outside its polling loops: more with each hook step it runs (0-2)."""
    return budget.EVENTS_PER_NODE + hook_steps * budget.EVENTS_PER_HOOK_STEP


def structural_events(batches: Sequence[Sequence[NodeTarget]], hook_steps: int = 0) -> int:
    """Events of the wave that no polling loop repeats (each loop's first round included)."""
    nodes = sum(len(b) for b in batches)
    return EVENTS_PER_WAVE + len(batches) * budget.EVENTS_PER_BATCH + nodes * node_events(hook_steps)


def round_scale(
    batches: Sequence[Sequence[NodeTarget]], guard: int = HISTORY_GUARD_EVENTS, hook_steps: int = 0
) -> int:
    """The largest k such that every loop of the wave polling k x its measured rounds stays,
    all together, under `guard` events: each loop's cap (eks_rolling.guard) is k x its rounds."""
    room = guard - structural_events(batches, hook_steps)
    return max(room // (budget.EVENTS_PER_WAIT_ROUND * max(loop_rounds(batches), 1)), 0)


def expected_events(batches: Sequence[Sequence[NodeTarget]], hook_steps: int = 0) -> int:
    nodes = sum(len(b) for b in batches)
    extra = sum(n.redis_rounds + n.held_rounds for b in batches for n in b)
    return (
        budget.estimate_history_events(nodes, len(batches))
        - budget.EVENTS_FIXED
        + EVENTS_PER_WAVE
        + extra * budget.EVENTS_PER_WAIT_ROUND
        + nodes * hook_steps * budget.EVENTS_PER_HOOK_STEP
    )


def fits(
    batches: Sequence[Sequence[NodeTarget]],
    *,
    wave_budget: int = WAVE_HISTORY_BUDGET,
    max_nodes: int = 0,
    max_batches: int = 0,
    hook_steps: int = 0,
) -> bool:
    nodes = sum(len(b) for b in batches)
    return (
        expected_events(batches, hook_steps) <= wave_budget
        and round_scale(batches, hook_steps=hook_steps) >= GUARD_FACTOR
        and (max_nodes <= 0 or nodes <= max_nodes)
        and (max_batches <= 0 or len(batches) <= max_batches)
    )


def group_waves(
    batches: Sequence[Sequence[NodeTarget]],
    *,
    wave_budget: int = WAVE_HISTORY_BUDGET,
    max_nodes: int = 0,
    max_batches: int = 0,
    hook_steps: int = 0,
) -> list[WaveShape]:
    """Consecutive batches, greedily, while the wave still fits; a batch that does not fit even
    alone is a wave of its own (build_plan reports it as a blocker)."""
    out: list[WaveShape] = []
    current: list[Sequence[NodeTarget]] = []

    def close() -> None:
        if current:
            out.append(
                WaveShape(
                    batches=tuple(tuple(b) for b in current),
                    round_scale=round_scale(current, hook_steps=hook_steps),
                    expected_events=expected_events(current, hook_steps),
                )
            )

    for batch in batches:
        if current and not fits(
            [*current, batch],
            wave_budget=wave_budget,
            max_nodes=max_nodes,
            max_batches=max_batches,
            hook_steps=hook_steps,
        ):
            close()
            current = []
        current.append(batch)
    close()
    return out


def oversized(shape: WaveShape) -> bool:
    """A wave (one batch) whose loops cannot get GUARD_FACTOR x their rounds under the guard."""
    return shape.round_scale < GUARD_FACTOR


def waves_of(shapes: Sequence[WaveShape], canary: int = 0, surge_over_old: int = 0) -> list[Wave]:
    """The plan's waves, named `wNN` until the service prefixes the execution's name; the first
    `canary` of them hold the canary nodes. `surge_over_old`: waves together (planning.together)."""
    return [
        Wave(
            index=i,
            name=f"w{i:02d}",
            batches=[list(b) for b in s.batches],
            round_scale=s.round_scale,
            expected_events=s.expected_events,
            nodes=s.nodes,
            canary=i <= canary,
            taint_rest=canary > 0 and i == canary + 1,
            surge_over_old=surge_over_old,
        )
        for i, s in enumerate(shapes, 1)
    ]


def child_name(execution_id: str, asg_name: str, index: int) -> str:
    """`<roll>-<asg>-w03`: the parent execution's name, the ASG and the wave; valid characters,
    at most 80, unique per (execution, ASG, wave) even when truncated (a hash keeps it so)."""
    roll = execution_id.rsplit(":", 1)[-1]
    base = _NAME_CHARS.sub("-", f"{roll}-{asg_name}")
    tail = f"-w{index:02d}"
    if len(base) + len(tail) > MAX_NAME:
        digest = hashlib.sha256(base.encode()).hexdigest()[:8]
        base = f"{base[: MAX_NAME - len(tail) - len(digest) - 1]}-{digest}"
    return f"{base}{tail}"


def child_prefix(execution_id: str, asg_name: str) -> str:
    """What every child name of this roll and ASG starts with (child_name may truncate the rest)."""
    roll = execution_id.rsplit(":", 1)[-1]
    return _NAME_CHARS.sub("-", f"{roll}-{asg_name}")[: MAX_NAME - len("-w100") - 9]


def named(waves: Sequence[Wave], execution_id: str, asg_name: str) -> list[Wave]:
    return [w.model_copy(update={"name": child_name(execution_id, asg_name, w.index)}) for w in waves]


def parent_events(waves: int, bake_rounds: int = 0) -> int:
    """What the waves add to the parent's history: a constant per wave, plus the health gate's
    bake after each wave (its rounds are bounded: health_bake.rounds)."""
    bake = BAKE_EVENTS + bake_rounds * BAKE_EVENTS_PER_ROUND if bake_rounds else 0
    return waves * (PARENT_EVENTS_PER_WAVE + bake)


def canary_split(
    targets: Sequence[NodeTarget], per_az: int, last: set[str] | None = None
) -> tuple[list[NodeTarget], list[NodeTarget]]:
    """(canary, the rest): the first `per_az` old nodes of each zone, cheapest first (fewest pods
    to move), nodes in `last` (hosting a Sentinel master) only if the zone has nothing else. The
    canary keeps the targets' order; 0 means no canary."""
    if per_az <= 0:
        return [], list(targets)
    chosen: set[str] = set()
    for az in sorted({t.az for t in targets}):
        zone = sorted(
            (t for t in targets if t.az == az),
            key=lambda t: (t.node_name in (last or set()), t.pods, t.instance_id),
        )
        chosen.update(t.instance_id for t in zone[:per_az])
    return [t for t in targets if t.instance_id in chosen], [
        t for t in targets if t.instance_id not in chosen
    ]


def plan_state(plan: Plan, execution_id: str) -> PlanRollOutput:
    """The plan as the state machine carries it: each node target once, in its named wave (the
    flat `batches` would double the state; `Plan.nodes` reads the waves)."""
    if not plan.waves:
        return PlanRollOutput(**plan.model_dump())
    return PlanRollOutput(
        **{**plan.model_dump(), "batches": [], "waves": named(plan.waves, execution_id, plan.asg_name)}
    )


def wave_key(wave_name: str) -> str:
    return f"{STORE_PREFIX}/{wave_name}.json"


def offloaded(state: PlanRollOutput, bucket: str) -> tuple[PlanRollOutput, dict[str, list[list[NodeTarget]]]]:
    """The plan state with each wave's batches replaced by its S3 key, and what to store where:
    the roll then carries a few hundred bytes per wave whatever its size, each child its own."""
    objects = {wave_key(w.name): w.batches for w in state.waves}
    waves = [
        w.model_copy(update={"batches": [], "bucket": bucket, "key": wave_key(w.name)}) for w in state.waves
    ]
    return state.model_copy(update={"waves": waves}), objects
