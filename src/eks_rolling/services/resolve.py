"""ResolveTarget: turn the trigger into the ASG(s) to roll and refuse bad input before anything
changes. AcquireLock: the per-ASG lock, so overlapping triggers never run two rolls."""

from __future__ import annotations

import hashlib
import logging
import re

from ..aws.asg import AsgOps, AsgState
from ..aws.events import Home, TriggerRequest, parse_trigger
from ..aws.lock import lock_key
from ..errors import (
    AsgNotFoundError,
    AsgNotOptedInError,
    InvalidInputError,
    LockHolderUnknownError,
    RollInProgressError,
)
from ..models import (
    AcquireLockInput,
    AcquireLockOutput,
    ResolveTargetInput,
    ResolveTargetOutput,
    RollContext,
    Skipped,
)
from .deps import Deps
from .restore import restore_dead_run

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
    """A manual start names its group on purpose: a group that does not exist, is not opted in or
    belongs to another cluster is an error. An event fires for every group in the account (a
    CloudFormation update of someone else's group included): those end as skipped, with the
    reason in the output, and never as a failed execution that pages someone."""
    req: TriggerRequest = parse_trigger(inp.event, Home.of(inp.execution_id, deps.settings.region))
    manual = req.kind == "manual"
    names = list(req.asg_names)
    if req.kind == "scheduled":
        names = deps.asg.opted_in(deps.settings.opt_in_tag_key, deps.settings.opt_in_tag_value)
    elif not names:
        specs = {LATEST} if req.kind == "create_launch_template_version" else {DEFAULT}
        names = deps.asg.asgs_using_launch_template(req.launch_template_id, req.launch_template_name, specs)
    targets: list[RollContext] = []
    skipped: list[Skipped] = []
    for name in names:
        try:
            target, state = _target(name, inp, req, deps)
        except (AsgNotFoundError, AsgNotOptedInError, InvalidInputError) as exc:
            if manual:
                raise
            skipped.append(Skipped(asg_name=name, reason=f"{type(exc).__name__}: {exc}"))
            continue
        if req.kind == "scheduled" and not any(AsgOps.is_outdated(i, state) for i in state.instances):
            # The drift check takes no lock for a group with nothing to roll.
            skipped.append(Skipped(asg_name=name, reason="up to date"))
            continue
        targets.append(target)
    log.info("resolved %s trigger: %d target(s), %d skipped", req.kind, len(targets), len(skipped))
    return ResolveTargetOutput(
        trigger=req.kind,
        targets=targets,
        skipped=skipped,
        has_targets=bool(targets),
        asg_concurrency=deps.settings.asg_concurrency,
    )


def _target(
    name: str, inp: ResolveTargetInput, req: TriggerRequest, deps: Deps
) -> tuple[RollContext, AsgState]:
    s = deps.settings
    # Tags first: someone else's group is never described further (its template's SSM alias may
    # be one we are not allowed to read).
    if deps.asg.tags(name).get(s.opt_in_tag_key) != s.opt_in_tag_value:  # AsgNotFoundError if unknown
        raise AsgNotOptedInError(
            f"ASG {name} is not opted in: tag {s.opt_in_tag_key}={s.opt_in_tag_value} is missing"
        )
    state = deps.asg.describe(name)
    ctx = RollContext(
        execution_id=inp.execution_id,
        asg_name=name,
        cluster_name=cluster_of(state, s.cluster_name),
        dry_run=req.dry_run,
        taint_value=taint_value_for(inp.execution_id),
        scope=req.scope,
    )
    return ctx, state


def acquire_lock(inp: AcquireLockInput, deps: Deps) -> AcquireLockOutput:
    """Per ASG, as the first step of its roll, so a failure in one ASG never strands another's
    lock. A second trigger for the same ASG gets RollInProgressError and changes nothing while
    the holder runs. A holder that is no longer running (aborted, timed out, failed without its
    Catch path) would otherwise block the group for the lock's whole TTL with cluster-autoscaler
    at 0: its lock is taken over and what it left is restored from its saved record."""
    ctx, ttl = inp.ctx, deps.settings.lock_ttl_s
    now = deps.now().timestamp()
    try:
        holder = deps.lock.acquire(ctx.asg_name, ctx.execution_id, ttl_s=ttl, now=now)
        # From an expired lock, or on a retry after a takeover (restoring again is harmless).
        if holder is None or _alive(holder, deps):
            return AcquireLockOutput(owner=ctx.execution_id, expires_in_s=ttl)
    except RollInProgressError as exc:
        holder = exc.holder
        if holder is None or deps.executions.is_alive(holder):
            raise
        if not deps.lock.take_over(ctx.asg_name, holder=holder, owner=ctx.execution_id, ttl_s=ttl, now=now):
            raise  # a third run took it over first: it restores, we skip
    dead = ctx.model_copy(update={"execution_id": holder, "taint_value": taint_value_for(holder)})
    restored = restore_dead_run(ctx, dead, deps)
    return AcquireLockOutput(
        owner=ctx.execution_id, expires_in_s=ttl, took_over_from=holder, restored=restored
    )


def _alive(holder: str, deps: Deps) -> bool:
    """For a lock we already hold: an undescribable former holder counts as dead (its lock
    expired, so it had its whole TTL)."""
    try:
        return deps.executions.is_alive(holder)
    except LockHolderUnknownError:
        return False


__all__ = ["acquire_lock", "lock_key", "resolve_target", "taint_value_for"]
