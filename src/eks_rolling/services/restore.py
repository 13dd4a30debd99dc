"""Put back what the roll paused: on success (RestoreCluster) and on every failure (Rollback).

Rollback never trusts that earlier steps returned: it falls back to the originals recorded on the
ASG, removes our taint from old nodes that are still there, and gives back surge capacity that
holds no workload, so that nothing is left paused or half-done."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..aws.asg import AsgOps, AsgState
from ..errors import EksRollingError
from ..labels import EXCLUDE_FROM_EXTERNAL_LB
from ..models import (
    AsgOriginals,
    AutoscalerState,
    ReleaseLockInput,
    ReleaseLockOutput,
    RestoreClusterInput,
    RestoreClusterOutput,
    RestoreReport,
    RollbackInput,
    RollbackOutput,
    RollContext,
    counted,
)
from ..planning.plan import is_evictable
from ..planning.waves import child_prefix
from .deps import Deps
from .redis import redis_cleanup
from .saved import delete_saved, merged_stale, read_saved

log = logging.getLogger(__name__)
# How long Rollback waits for the waves it stopped to end (a stop ends an execution in seconds).
STOP_WAVES_TIMEOUT_S = 60


def release_lock(inp: ReleaseLockInput, deps: Deps) -> ReleaseLockOutput:
    return ReleaseLockOutput(released=deps.lock.release(inp.ctx.asg_name, inp.ctx.execution_id))


def restore_dead_run(ctx: RollContext, dead: RollContext, deps: Deps) -> RestoreReport:
    """What a dead run left (its taint, cluster-autoscaler at 0, suspended processes, idle surge,
    Redis temp pods and group locks), restored from the record it saved on the ASG, as its own
    Rollback would have. Called by the run that took its lock over, before it plans."""
    report = _restore(dead, deps, None, None, rollback=True)
    log.warning("restored what dead run %s left on %s: %s", dead.execution_id, ctx.asg_name, report)
    deps.notifier.publish(
        "taken_over",
        f"eks-rolling: roll of {ctx.asg_name} by a dead run taken over",
        {
            "asg": ctx.asg_name,
            "execution": ctx.execution_id,
            "dead_execution": dead.execution_id,
            "restored": report.model_dump(mode="json"),
        },
    )
    return report


def restore_cluster(inp: RestoreClusterInput, deps: Deps) -> RestoreClusterOutput:
    report = _restore(inp.ctx, deps, inp.autoscaler, inp.asg, rollback=False)
    return RestoreClusterOutput(**report.model_dump())


def rollback(inp: RollbackInput, deps: Deps) -> RollbackOutput:
    error = inp.error.unwrapped()  # a failed wave: the child's own error, not States.TaskFailed
    stopped = stop_waves(inp, deps, error.error)
    report = _restore(inp.ctx, deps, inp.autoscaler, inp.asg, rollback=True)
    report.notes[:0] = stopped
    log.warning("rolled back %s after %s", inp.ctx.asg_name, error.error)
    deps.notifier.publish(
        "failed",
        f"eks-rolling: roll of {inp.ctx.asg_name} failed ({error.error})",
        {
            "asg": inp.ctx.asg_name,
            "execution": inp.ctx.execution_id,
            "error": error.error,
            "cause": error.cause[:2000],
            "restored": report.model_dump(mode="json"),
        },
    )
    return RollbackOutput(**report.model_dump(), error=error.error, cause=error.cause)


def stop_waves(inp: RollbackInput, deps: Deps, error: str) -> list[str]:
    """Waves that ran together: when one fails, its siblings may still drain and terminate (the
    Map's abort does not stop them at once, or at all in the sandbox). Stop this roll's running
    children and wait, within STOP_WAVES_TIMEOUT_S, until none runs, before anything is restored.
    Best effort, as all of Rollback: what it could not do is in its notes."""
    if not inp.wave_machine:
        return []
    executions = deps.executions
    prefix = child_prefix(inp.ctx.execution_id, inp.ctx.asg_name)
    try:
        running = executions.running_children(inp.wave_machine, inp.ctx.execution_id, prefix)
        for arn in running:
            executions.stop(arn, "RollStopped", f"the roll rolls back after {error}")
        deadline = deps.monotonic() + STOP_WAVES_TIMEOUT_S
        while running and deps.monotonic() < deadline:
            deps.sleep(1)
            running = [a for a in running if executions.is_alive(a)]
    except (EksRollingError, OSError) as exc:
        log.exception("rollback: stopping the waves failed")
        return [f"stopping the roll's waves failed: {exc}"]
    if running:
        return [f"waves still running after {STOP_WAVES_TIMEOUT_S}s: {', '.join(running)}"]
    return []


def _restore(
    ctx: RollContext,
    deps: Deps,
    autoscaler: AutoscalerState | None,
    originals: AsgOriginals | None,
    *,
    rollback: bool,
) -> RestoreReport:
    notes: list[str] = []

    def attempt(what: str, fn: Callable[[], Any]) -> Any:
        # In a rollback every action is best effort: one failure must not stop the others.
        if not rollback:
            return fn()
        try:
            return fn()
        except (EksRollingError, OSError) as exc:
            notes.append(f"{what} failed: {exc}")
            log.exception("rollback: %s failed", what)
            return None

    state: AsgState = deps.asg.describe(ctx.asg_name)
    saved = read_saved(state.tags)
    ours = saved.get(ctx.taint_value)
    stale = merged_stale(saved, ctx.taint_value)
    if originals is None and ours is not None and ours.desired is not None:
        originals = AsgOriginals(
            desired=ours.desired,
            min_size=ours.min_size or state.min_size,
            max_size=ours.max_size or state.max_size,
            suspended=ours.processes,
        )
    ca_original = (
        autoscaler.original_replicas if autoscaler and autoscaler.found else (ours.ca if ours else None)
    )
    report = RestoreReport(notes=notes)
    untainted = attempt("untaint old nodes", lambda: _untaint(ctx, deps, state)) or []
    terminated: list[str] = []
    if rollback and originals is not None:
        terminated = attempt("give back surge capacity", lambda: _shed_surge(ctx, deps, originals)) or []
    if originals is not None:
        state = deps.asg.describe(ctx.asg_name)
        desired = state.desired
        max_size = max(originals.max_size, desired)
        if desired != originals.desired:
            notes.append(
                f"desired is {desired}, original was {originals.desired}: left as is (instances hold workloads)"
            )
        if state.max_size != max_size:
            attempt(
                "restore MaxSize",
                lambda: deps.asg.set_capacity(ctx.asg_name, desired=desired, max_size=max_size),
            )
        resumed = [p for p in originals.suspended if p in state.suspended_processes]
        if resumed:
            attempt("resume processes", lambda: deps.asg.resume(ctx.asg_name, resumed))
        report = report.model_copy(update={"desired": desired, "max_size": max_size, "resumed": resumed})
    if ca_original is not None:
        kube = deps.kube(ctx.cluster_name)
        ns, name = deps.settings.autoscaler_namespace, deps.settings.autoscaler_deployment
        attempt("restore cluster-autoscaler", lambda: kube.scale_deployment(ns, name, ca_original))
        report = report.model_copy(update={"autoscaler_replicas": ca_original})
    notes += attempt("clean up Redis", lambda: redis_cleanup(ctx, deps)) or []
    runs = [ctx.taint_value] + ([r for r in saved if r != ctx.taint_value] if stale else [])
    attempt(
        "clear saved state", lambda: delete_saved(deps.asg, ctx.asg_name, [r for r in runs if r in saved])
    )
    if untainted or terminated:
        log.info("untainted %s; gave back %s", untainted, terminated)
    update = {**counted("untainted", untainted), **counted("terminated_surge", terminated), "notes": notes}
    return report.model_copy(update=update)


def _untaint(ctx: RollContext, deps: Deps, state: AsgState) -> list[str]:
    """Old nodes still carrying this run's taint get it (and the LB exclusion) removed, if their
    instance is still in the group: a replaced node's Node object outlives its instance for a
    while, and giving it back to the load balancers would send traffic to a machine that is gone."""
    kube = deps.kube(ctx.cluster_name)
    key = deps.settings.taint_key
    in_service = {i.instance_id for i in state.instances if not i.lifecycle_state.startswith("Terminat")}
    out = []
    for node in kube.list_nodes():
        ours = any(t.key == key and t.value == ctx.taint_value for t in node.taints)
        if not ours or node.instance_id not in in_service:
            continue
        kube.remove_taint(node.name, key, ctx.taint_value)
        if node.labels.get(EXCLUDE_FROM_EXTERNAL_LB):
            kube.set_label(node.name, EXCLUDE_FROM_EXTERNAL_LB, None)
        out.append(node.name)
    return out


def _shed_surge(ctx: RollContext, deps: Deps, originals: AsgOriginals) -> list[str]:
    """Terminate (with decrement) new instances beyond the original desired capacity that hold
    no workload: a node that never became Ready, or one nothing was moved to yet."""
    state = deps.asg.describe(ctx.asg_name)
    excess = state.desired - originals.desired
    if excess <= 0:
        return []
    kube = deps.kube(ctx.cluster_name)
    by_instance = kube.nodes_by_instance()
    out = []
    for inst in state.instances:
        if excess <= 0:
            break
        if AsgOps.is_outdated(inst, state) or inst.lifecycle_state.startswith("Terminat"):
            continue
        node = by_instance.get(inst.instance_id)
        if node is not None and node.ready:
            busy = [p for p in kube.pods_on_node(node.name) if is_evictable(kube.pod_view(p))]
            if busy:
                continue
        if deps.asg.terminate(inst.instance_id, decrement=True, asg_name=ctx.asg_name):
            out.append(inst.instance_id)
            excess -= 1
    return out
