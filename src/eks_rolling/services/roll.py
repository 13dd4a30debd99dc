"""The steps that prepare and finish each node: plan, pause, taint, surge, wait for new nodes,
exclude from load balancers, terminate."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from ..aws.asg import AsgOps, AsgState
from ..errors import CapacityError, NewNodesTimeoutError, PlanBlockedError
from ..k8s.ops import instance_id_of
from ..labels import EXCLUDE_FROM_EXTERNAL_LB
from ..metrics import Metric, emit
from ..models import (
    ExcludeFromLoadBalancersInput,
    ExcludeFromLoadBalancersOutput,
    NodeTarget,
    PauseAutoscalerInput,
    PauseAutoscalerOutput,
    PlanRollInput,
    PlanRollOutput,
    PollState,
    RollContext,
    SurgeCapacityInput,
    SurgeCapacityOutput,
    SuspendProcessesInput,
    SuspendProcessesOutput,
    TaintOldNodesInput,
    TaintOldNodesOutput,
    TaintRemainingNodesInput,
    TaintRemainingNodesOutput,
    TerminateInstanceInput,
    TerminateInstanceOutput,
    WaitNewNodesInput,
    WaitNewNodesOutput,
)
from ..planning import RedisGroupView, build_plan
from ..planning.capacity import plan_capacity
from ..planning.gate import bake_rounds
from ..planning.together import live_outdated
from ..planning.waves import plan_state
from ..settings import check_environment
from .deps import Deps
from .gate import alarms_for, check_alarms_exist, windows_for
from .hooks import hooks_for
from .plans import plan_nodes, stored
from .redis import groups_of, redis_health
from .saved import Saved, merged_stale, read_saved, write_saved
from .snapshot import asg_view, canary_per_az, gather, gather_batch, policy

log = logging.getLogger(__name__)


def plan_roll(inp: PlanRollInput, deps: Deps) -> PlanRollOutput:
    ctx = inp.ctx
    check_environment()  # before anything changes: a misspelt setting would silently be ignored
    state = deps.asg.describe(ctx.asg_name)
    snap = gather(
        state,
        deps.kube(ctx.cluster_name),
        deps.settings,
        redis_views=lambda refs: redis_views(ctx, deps, refs),
        now=deps.now(),
    )
    windows, text, windows_from = windows_for(deps.settings, state.tags)  # a bad one stops here
    hooks = hooks_for(deps.settings, state.tags)  # so does a bad hook target
    alarms = check_alarms_exist(deps.settings, state.tags, deps)  # and a missing health alarm
    bake_s = deps.settings.health_bake_s if alarms else 0
    # CheckGate runs between waves: with windows, each batch is a wave, so none starts outside one.
    rules = replace(
        policy(deps.settings, state.tags, ctx.scope),
        max_batches_per_wave=1 if windows else 0,
        hook_steps=bool(hooks.pre_drain) + bool(hooks.post_replace),  # their events, in the budget
        bake_rounds=bake_rounds(bake_s, deps.settings.health_poll_s) if alarms else 0,
        # A canary is there to be judged: without health alarms there is no gate to judge it.
        canary_per_az=canary_per_az(deps.settings, state.tags) if alarms else 0,
    )
    plan = build_plan(snap, rules)
    plan = plan.model_copy(
        update={
            "maintenance_windows": text,
            "maintenance_windows_from": windows_from,
            "hooks": hooks,
            # each wave carries them: its Choice states call the hook steps only when there are some
            # (and the parent's HasBake runs the health gate after it only with alarms)
            "waves": [w.model_copy(update={"hooks": hooks, "bake_s": bake_s}) for w in plan.waves],
            "health_alarms": alarms,
            "health_alarms_from": alarms_for(deps.settings, state.tags)[1],
            "health_bake_s": bake_s,
            "previous_version": previous_version(state),
            "revert_on_alarm": deps.settings.revert_on_alarm,
        }
    )
    log.info(
        "plan for %s: %d outdated, %d batches, %d findings",
        ctx.asg_name,
        plan.outdated,
        len(plan.batches),
        len(plan.findings),
    )
    if plan.blocked and not ctx.dry_run:
        deps.notifier.publish(
            "blocked",
            f"eks-rolling: roll of {ctx.asg_name} blocked",
            {
                "asg": ctx.asg_name,
                "execution": ctx.execution_id,
                "blockers": [f.message for f in plan.blockers],
            },
        )
        raise PlanBlockedError("; ".join(f.message for f in plan.blockers))
    # Each wave's child execution is named after this roll, the ASG and the wave.
    return stored(plan_state(plan, ctx.execution_id), deps)


def previous_version(state: AsgState) -> str | None:
    """The launch template version most old instances run: what the roll replaces (and what
    revert_on_alarm points the ASG back at)."""
    versions = Counter(
        i.launch_template_version
        for i in state.instances
        if i.launch_template_version and AsgOps.is_outdated(i, state)
    )
    return versions.most_common(1)[0][0] if versions else None


def redis_views(ctx: RollContext, deps: Deps, refs: set[str]) -> tuple[RedisGroupView, ...]:
    if not deps.settings.redis_enabled:
        return ()
    groups = [g for g in groups_of(deps.kube(ctx.cluster_name)) if g.ref in refs]
    health = redis_health(ctx, deps, groups)
    return tuple(
        RedisGroupView(
            g.ref,
            g.kind,
            tuple(health[g.ref].problems),
            tuple(f"{g.namespace}/{p}" for p in health[g.ref].master_pods),
        )
        for g in groups
    )


def pause_autoscaler(inp: PauseAutoscalerInput, deps: Deps) -> PauseAutoscalerOutput:
    ctx, s = inp.ctx, deps.settings
    kube = deps.kube(ctx.cluster_name)
    ns, name = s.autoscaler_namespace, s.autoscaler_deployment
    replicas = kube.deployment_replicas(ns, name)
    if replicas is None:
        return PauseAutoscalerOutput(namespace=ns, name=name, found=False)
    state = deps.asg.describe(ctx.asg_name)
    saved = read_saved(state.tags)
    ours = saved.get(ctx.taint_value) or Saved(ctx.taint_value)
    if ours.ca is None:
        stale = merged_stale(saved, ctx.taint_value)
        # A dead run may have left the autoscaler at 0: its record holds the real original.
        ours.ca = stale.ca if stale and stale.ca is not None else replicas
        write_saved(deps.asg, ctx.asg_name, ours)  # record before acting, so a crash can't lose it
    if replicas != 0:
        kube.scale_deployment(ns, name, 0)
    log.info("cluster-autoscaler %s/%s paused (was %d)", ns, name, ours.ca)
    return PauseAutoscalerOutput(namespace=ns, name=name, found=True, original_replicas=ours.ca)


def suspend_processes(inp: SuspendProcessesInput, deps: Deps) -> SuspendProcessesOutput:
    ctx = inp.ctx
    state = deps.asg.describe(ctx.asg_name)
    saved = read_saved(state.tags)
    ours = saved.get(ctx.taint_value) or Saved(ctx.taint_value)
    if ours.desired is None:
        stale = merged_stale(saved, ctx.taint_value)
        ours.desired = stale.desired if stale and stale.desired is not None else state.desired
        ours.min_size = stale.min_size if stale and stale.min_size is not None else state.min_size
        ours.max_size = stale.max_size if stale and stale.max_size is not None else state.max_size
        inherited = stale.processes if stale else []
        # Ours to resume: what we suspend now, and what a dead run suspended and never resumed.
        ours.processes = [
            p for p in deps.settings.suspend_processes if p not in state.suspended_processes or p in inherited
        ]
        write_saved(deps.asg, ctx.asg_name, ours)
    todo = [p for p in ours.processes if p not in state.suspended_processes]
    if todo:
        deps.asg.suspend(ctx.asg_name, todo)
    assert ours.desired is not None and ours.min_size is not None and ours.max_size is not None
    return SuspendProcessesOutput(
        desired=ours.desired, min_size=ours.min_size, max_size=ours.max_size, suspended=ours.processes
    )


def taint_old_nodes(inp: TaintOldNodesInput, deps: Deps) -> TaintOldNodesOutput:
    """Every planned old node; with a canary, only the canary's: the others are tainted when the
    canary has baked (TaintRemainingNodes), so a bad new version never touched them."""
    canary = any(w.canary for w in inp.plan.waves)
    return taint(inp.ctx, plan_nodes(inp.plan, deps, lambda w: w.canary or not canary), deps)


def taint_remaining_nodes(inp: TaintRemainingNodesInput, deps: Deps) -> TaintRemainingNodesOutput:
    """Before the first wave after the canary: the old nodes of it and of every later wave."""
    out = taint(inp.ctx, plan_nodes(inp.plan, deps, lambda w: w.index >= inp.wave), deps)
    return TaintRemainingNodesOutput(**out.model_dump())


def taint(ctx: RollContext, targets: list[NodeTarget], deps: Deps) -> TaintOldNodesOutput:
    s = deps.settings
    kube = deps.kube(ctx.cluster_name)
    by_instance = kube.nodes_by_instance()
    tainted, missing = [], []
    for target in targets:
        node = by_instance.get(target.instance_id)
        if node is None:
            missing.append(target.instance_id)
            continue
        # Re-validate: only a node still backed by the planned instance is marked.
        kube.add_taint(node.name, s.taint_key, ctx.taint_value)
        tainted.append(node.name)
    return TaintOldNodesOutput(tainted=tainted, missing=missing)


def surge_capacity(inp: SurgeCapacityInput, deps: Deps) -> SurgeCapacityOutput:
    """Enough new instances for what the batch's drain evicts: at least original + this batch
    (each finished batch gave its capacity back when its old instances were terminated with
    decrement), more when the pods' requests need them (planning.capacity, on live data).
    A retry is harmless: instances already launched count as room, so it asks for no more.
    Waves together: the floor `surge_over_old` + live outdated instances, the same for every
    concurrent child (planning.together); it never lowers the desired capacity."""
    ctx = inp.ctx
    state = deps.asg.describe(ctx.asg_name)
    if inp.surge_over_old:
        desired = max(state.desired, inp.surge_over_old + live_outdated(asg_view(state)))
    else:
        fit = plan_capacity(
            gather_batch(state, deps.kube(ctx.cluster_name), inp.batch), [inp.batch], inp.asg.desired
        )
        if fit.findings:
            # The plan found room; something changed since. Surge the most a batch may and let the
            # owner wait report what stays Pending, rather than stop halfway through the roll.
            log.warning("surge %s: %s", ctx.asg_name, "; ".join(f.message for f in fit.findings))
        desired = max(inp.asg.desired + len(inp.batch), state.desired + fit.surges[0])
    max_size = state.max_size
    raised = False
    if desired > max_size:
        if not deps.settings.raise_max_size:
            raise CapacityError(
                f"ASG {ctx.asg_name} needs {desired} instances to surge but MaxSize is {max_size}"
            )
        max_size, raised = desired, True
    if state.desired != desired or raised:
        deps.asg.set_capacity(ctx.asg_name, desired=desired, max_size=max_size if raised else None)
    log.info("surge %s: desired %d -> %d (max %d)", ctx.asg_name, state.desired, desired, max_size)
    return SurgeCapacityOutput(desired=desired, max_size=max_size, raised_max=raised)


def wait_new_nodes(inp: WaitNewNodesInput, deps: Deps) -> WaitNewNodesOutput:
    """Every non-outdated instance of THIS ASG is InService and a Ready node without our taint,
    and there are as many as desired minus the old ones (never a cluster-wide count)."""
    ctx, s = inp.ctx, deps.settings
    now = deps.now()
    started, deadline, attempt = PollState.begin(inp.wait, now, s.new_nodes_timeout_s)
    state = deps.asg.describe(ctx.asg_name)
    kube = deps.kube(ctx.cluster_name)
    by_instance = kube.nodes_by_instance()
    old = [i for i in state.instances if AsgOps.is_outdated(i, state)]
    new = [
        i
        for i in state.instances
        if not AsgOps.is_outdated(i, state) and not i.lifecycle_state.startswith("Terminat")
    ]
    expected = state.desired - len(old)
    ready, pending = [], []
    for inst in new:
        node = by_instance.get(inst.instance_id)
        if inst.lifecycle_state != "InService":
            pending.append(f"{inst.instance_id} ({inst.az}) is {inst.lifecycle_state}")
        elif node is None:
            pending.append(f"{inst.instance_id} ({inst.az}) has not registered as a node")
        elif not node.ready:
            pending.append(f"{inst.instance_id} ({inst.az}) node {node.name} is not Ready")
        else:
            ready.append(node.name)
    if len(new) < expected:
        pending.append(f"{expected - len(new)} instance(s) not launched yet")
    done = len(ready) >= expected and not pending
    if done:
        log.info("new nodes of %s Ready: %s", ctx.asg_name, sorted(ready))
    idle, wait_s = PollState.pace(
        inp.wait, pending, s.poll_interval_s, s.poll_cap_s, now=now, deadline=deadline
    )
    if not done and now >= deadline:
        raise NewNodesTimeoutError(
            f"new nodes of ASG {ctx.asg_name} not Ready after {s.new_nodes_timeout_s}s: " + "; ".join(pending)
        )
    return WaitNewNodesOutput(
        started_at=started,
        deadline=deadline,
        attempt=attempt,
        done=done,
        next_wait_s=wait_s,
        detail=pending,
        idle=idle,
        ready_new_nodes=len(ready),
    )


def exclude_from_load_balancers(
    inp: ExcludeFromLoadBalancersInput, deps: Deps
) -> ExcludeFromLoadBalancersOutput:
    """Service controllers and the AWS Load Balancer Controller drop labelled nodes from target
    groups; a custom taint alone keeps the node a target until its instance is gone."""
    name = inp.node.node_name
    kube = deps.kube(inp.ctx.cluster_name)
    if name is None or kube.get_node(name) is None:
        return ExcludeFromLoadBalancersOutput(node_name=name, wait_s=0)
    kube.set_label(name, EXCLUDE_FROM_EXTERNAL_LB, "true")
    return ExcludeFromLoadBalancersOutput(node_name=name, wait_s=deps.settings.deregistration_delay_s)


def terminate_instance(inp: TerminateInstanceInput, deps: Deps) -> TerminateInstanceOutput:
    ctx, target = inp.ctx, inp.node
    state = deps.asg.describe(ctx.asg_name, only=[target.instance_id])
    inst = next((i for i in state.instances if i.instance_id == target.instance_id), None)
    if inst is None:
        return TerminateInstanceOutput(
            instance_id=target.instance_id, terminated=False, note="not in the ASG any more"
        )
    if not AsgOps.is_outdated(inst, state):
        # Never terminate an instance that is already on the target template.
        return TerminateInstanceOutput(
            instance_id=target.instance_id, terminated=False, note="instance is up to date; left alone"
        )
    if target.node_name:
        node = deps.kube(ctx.cluster_name).get_node(target.node_name)
        if node is not None and instance_id_of(node.spec.provider_id) != target.instance_id:
            return TerminateInstanceOutput(
                instance_id=target.instance_id,
                terminated=False,
                note="node name now belongs to another instance",
            )
    done = deps.asg.terminate(target.instance_id, decrement=True, asg_name=ctx.asg_name)
    if done:
        emit(ctx, Metric.NODES_REPLACED, 1)
        if inp.started_at is not None:
            emit(ctx, Metric.NODE_REPLACEMENT_DURATION, (deps.now() - inp.started_at).total_seconds())
        deps.notifier.publish(
            "node_done",
            f"eks-rolling: {target.node_name or target.instance_id} replaced",
            {
                "asg": ctx.asg_name,
                "execution": ctx.execution_id,
                "instance": target.instance_id,
                "node": target.node_name,
            },
        )
    return TerminateInstanceOutput(
        instance_id=target.instance_id, terminated=done, note="" if done else "already terminating"
    )
