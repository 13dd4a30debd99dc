"""Small state at any size: a plan whose state would be large keeps its waves' batches in S3.

The parent's state then holds, per wave, its name, size, guard and S3 key; each child reads only
its own batches (statemachine/roll_wave.asl.json: ReadWave). Steps that need every node of the
plan (TaintOldNodes) read them back with `plan_nodes`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..models import NodeTarget, Plan, PlanRollOutput, Wave
from ..planning.waves import offloaded
from .deps import Deps

log = logging.getLogger(__name__)


def stored(state: PlanRollOutput, deps: Deps) -> PlanRollOutput:
    s = deps.settings
    if not s.plan_bucket or not state.waves or len(state.model_dump_json()) <= s.inline_plan_bytes:
        return state
    small, objects = offloaded(state, s.plan_bucket)
    for key, batches in objects.items():
        deps.plans.put_batches(key, batches)
    log.info("plan of %d waves stored in s3://%s", len(objects), s.plan_bucket)
    return small


def plan_nodes(plan: Plan, deps: Deps, keep: Callable[[Wave], bool] = lambda w: True) -> list[NodeTarget]:
    """Every node of the plan (of its waves that `keep` keeps), in order, wherever its waves'
    batches are."""
    if not plan.waves:
        return plan.nodes
    out: list[NodeTarget] = []
    for w in plan.waves:
        if not keep(w):
            continue
        batches = deps.plans.batches(w.key) if w.key else w.batches
        out += [n for b in batches for n in b]
    return out
