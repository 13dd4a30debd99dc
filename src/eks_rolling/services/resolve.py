"""ResolveTarget: turn the trigger into the ASG(s) to roll and refuse bad input before anything
changes. AcquireLock: the per-ASG lock, so overlapping triggers never run two rolls."""

from __future__ import annotations

import hashlib
import logging
import re

from ..aws.asg import AsgState
from ..aws.events import TriggerRequest, parse_trigger
from ..aws.lock import lock_key
from ..errors import AsgNotOptedInError, InvalidInputError
from ..models import (
    AcquireLockInput,
    AcquireLockOutput,
    ResolveTargetInput,
    ResolveTargetOutput,
    RollContext,
    Skipped,
)
from .deps import Deps

log = logging.getLogger(__name__)

CLUSTER_TAG = re.compile(r"^kubernetes\.io/cluster/(.+)$")
LATEST, DEFAULT = "$Latest", "$Default"


def taint_value_for(execution_id: str) -> str:
    """A label-value-safe id of this execution (<= 63 chars), carried by our taint."""
    name = execution_id.rsplit(":", 1)[-1]
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-_.")
    if 0 < len(clean) <= 63:
        return clean
    return "run-" + hashlib.sha256(execution_id.encode()).hexdigest()[:16]


def cluster_of(state: AsgState, configured: str | None) -> str:
    tagged = {m.group(1) for key in state.tags if (m := CLUSTER_TAG.match(key))}
    if configured:
        if tagged and configured not in tagged:
            # Never roll another cluster's nodes with this cluster's credentials.
            raise InvalidInputError(
                f"ASG {state.name} belongs to cluster {', '.join(sorted(tagged))}, not {configured}"
            )
        return configured
    if tagged:
        return sorted(tagged)[0]
    if "eks:cluster-name" in state.tags:
        return state.tags["eks:cluster-name"]
    raise InvalidInputError(
        f"cannot tell which EKS cluster ASG {state.name} belongs to: no kubernetes.io/cluster/<name> tag and no cluster_name setting"
    )


def resolve_target(inp: ResolveTargetInput, deps: Deps) -> ResolveTargetOutput:
    req: TriggerRequest = parse_trigger(inp.event)
    s = deps.settings
    explicit = bool(req.asg_names)
    names = list(req.asg_names)
    if not explicit:
        specs = {LATEST} if req.kind == "create_launch_template_version" else {DEFAULT}
        names = deps.asg.asgs_using_launch_template(req.launch_template_id, req.launch_template_name, specs)
    targets: list[RollContext] = []
    skipped: list[Skipped] = []
    for name in names:
        state = deps.asg.describe(name)  # AsgNotFoundError for an unknown name
        if state.tags.get(s.opt_in_tag_key) != s.opt_in_tag_value:
            if explicit:
                raise AsgNotOptedInError(
                    f"ASG {name} is not opted in: tag {s.opt_in_tag_key}={s.opt_in_tag_value} is missing"
                )
            skipped.append(Skipped(asg_name=name, reason="not opted in"))
            continue
        targets.append(
            RollContext(
                execution_id=inp.execution_id,
                asg_name=name,
                cluster_name=cluster_of(state, s.cluster_name),
                dry_run=req.dry_run,
                taint_value=taint_value_for(inp.execution_id),
            )
        )
    log.info("resolved %s trigger: %d target(s), %d skipped", req.kind, len(targets), len(skipped))
    return ResolveTargetOutput(trigger=req.kind, targets=targets, skipped=skipped, has_targets=bool(targets))


def acquire_lock(inp: AcquireLockInput, deps: Deps) -> AcquireLockOutput:
    """Per ASG, as the first step of its roll, so a failure in one ASG never strands another's
    lock. A second trigger for the same ASG gets RollInProgressError and changes nothing."""
    ctx, ttl = inp.ctx, deps.settings.lock_ttl_s
    deps.lock.acquire(ctx.asg_name, ctx.execution_id, ttl_s=ttl, now=deps.now().timestamp())
    return AcquireLockOutput(owner=ctx.execution_id, expires_in_s=ttl)


__all__ = ["acquire_lock", "lock_key", "resolve_target", "taint_value_for"]
