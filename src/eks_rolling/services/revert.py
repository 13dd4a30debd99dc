"""RevertTarget: Instance Refresh's auto-rollback, with the roll's Kubernetes-level safety.

After a health alarm halted the roll (HealthAlarmError) and with `revert_on_alarm`, the ASG is
pointed back at the launch template version its old instances run (Plan.previous_version). The
nodes of the rolled (bad) version, the canary's new nodes first of all, are then the outdated
ones: they are planned exactly as a roll plans (no canary, no scope: every node of the bad
version goes), tainted, and the parent runs the plan's waves in the same wave machine (surge
with the old template, move Redis, drain, terminate) before Rollback restores the rest. Old
nodes are up to date again, so nothing touches them.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..models import RevertTargetInput, RevertTargetOutput
from ..planning import Scope, build_plan
from ..planning.waves import plan_state
from .deps import Deps
from .plans import stored
from .roll import redis_views, taint
from .snapshot import gather, policy

log = logging.getLogger(__name__)

# The revert's child executions: `<roll>-rv-<asg>-wNN`, never the name of one of the roll's waves.
REVERT_SUFFIX = "-rv"


def revert_target(inp: RevertTargetInput, deps: Deps) -> RevertTargetOutput:
    ctx, plan, s = inp.ctx, inp.plan, deps.settings
    bad, good = plan.target_version, plan.previous_version
    if not s.revert_on_alarm:
        return RevertTargetOutput(reverted=False, note="revert_on_alarm is off")
    if good is None or good == bad:
        return RevertTargetOutput(reverted=False, note=f"no earlier version to point back at ({good})")
    state = deps.asg.describe(ctx.asg_name)
    if state.target_version not in (bad, good):
        # Someone pointed the group elsewhere since the plan: theirs wins.
        return RevertTargetOutput(
            reverted=False,
            version=state.target_version,
            note=f"the ASG points at version {state.target_version}, not the rolled {bad}: left as is",
        )
    deps.asg.set_launch_template_version(ctx.asg_name, good)
    state = deps.asg.describe(ctx.asg_name)
    snap = gather(
        state,
        deps.kube(ctx.cluster_name),
        s,
        redis_views=lambda refs: redis_views(ctx, deps, refs),
        now=deps.now(),
    )
    rules = replace(policy(s, state.tags), scope=Scope(), canary_per_az=0)
    again = build_plan(snap, rules)
    log.warning(
        "reverted %s to version %s: %d node(s) of version %s to roll back",
        ctx.asg_name,
        good,
        again.outdated,
        bad,
    )
    if again.blocked:
        note = "; ".join(f.message for f in again.blockers)
        return RevertTargetOutput(
            reverted=True, version=good, rolled_version=bad, note=f"nodes of {bad} left: {note}"
        )
    waves = stored(plan_state(again, ctx.execution_id + REVERT_SUFFIX), deps).waves
    tainted = taint(ctx, again.nodes, deps).tainted
    return RevertTargetOutput(reverted=True, version=good, rolled_version=bad, waves=waves, tainted=tainted)
