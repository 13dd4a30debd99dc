"""DrainNode and WaitOwnersReady: evict what must move, back off on PDB refusals, stop with the
blocking pod and PDB named once the deadline passes, then wait until the owners have recovered."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from ..errors import DoNotDisruptDeadlineError, DrainTimeoutError, EvictionRejectedError, OwnersNotReadyError
from ..k8s import KubeOps
from ..metrics import Metric, emit
from ..models import (
    DrainNodeInput,
    DrainNodeOutput,
    EvictedPod,
    OwnerRefModel,
    PollState,
    WaitOwnersReadyInput,
    WaitOwnersReadyOutput,
)
from ..planning.owners import SKIPPED_KINDS, STATUS_KINDS, counted_before
from ..planning.plan import is_evictable
from ..planning.scope import deadline_of, hold_wait_s
from ..planning.snapshot import OwnerRef, PodView
from ..settings import Settings
from . import deps as deps_module
from .deps import Deps

log = logging.getLogger(__name__)
P = TypeVar("P", bound=PollState)


def _poll_s(settings: Settings) -> int:
    """The first wait of a drain or owners loop: pods go within seconds, not a node's boot."""
    return max(1, min(settings.poll_interval_s, 5))


def backoff_s(throttled: int, settings: Settings, rng: random.Random | None = None) -> int:
    """Exponential backoff with jitter after consecutive 429s (kubectl uses a fixed 5 s)."""
    if throttled <= 0:
        return _poll_s(settings)
    cap = min(settings.eviction_backoff_cap_s, settings.eviction_backoff_base_s * 2.0 ** (throttled - 1))
    jitter = rng.uniform(0.5, 1.0) if rng else random.uniform(0.5, 1.0)
    return max(1, math.ceil(cap * jitter))


def _refuse(pod: PodView, settings: Settings) -> str | None:
    """Pods the plan should have caught; the cluster may have changed since."""
    if pod.owner is None:
        return f"pod {pod.ref} has no controller; eviction would lose it"
    if pod.has_emptydir and not settings.delete_emptydir_data:
        return f"pod {pod.ref} uses emptyDir and delete_emptydir_data is off"
    if pod.redis_group:
        return (
            f"pod {pod.ref} belongs to managed Redis group {pod.redis_group}; it is never evicted generically"
        )
    return None


def drain_node(inp: DrainNodeInput, deps: Deps) -> DrainNodeOutput:
    """One round of the drain, repeated in this invocation while pods are left (in_call) unless
    do-not-disrupt pods hold the node (their own, longer, waits): a PDB chain moves when its
    budget frees, not a back-off later; every pod evicted in the call is in its output."""
    return in_call(
        lambda prev: _drain_round(inp if prev is None else inp.model_copy(update={"drain": prev}), deps),
        lambda out: not out.done and not out.held,
        deps,
    )


def in_call(round_: Callable[[P | None], P], pending: Callable[[P], bool], deps: Deps) -> P:
    """A wait loop's round (`round_(None)`: as the state machine asked; `round_(prev)`: again after
    `prev`), repeated within this invocation every inline_poll_s while `pending`, up to
    inline_wait_s (counted in pauses, and on the step clock: rounds against a slow API server take
    time of their own, and the handler must return well before its Lambda's timeout); the state
    machine's next round then follows inline_poll_s later. Kubectl's pace at a few history events
    a minute; the rounds in the call count as one (`attempt`, what the history guard counts)."""
    since = deps.now()
    first = round_(None)
    s = deps.settings
    rounds = s.inline_wait_s // s.inline_poll_s  # 0: no retry in the call
    out, pauses = first, 0
    while pauses < rounds and pending(out) and (deps.now() - since).total_seconds() < s.inline_wait_s:
        deps_module.step_sleep(s.inline_poll_s)  # read at call time: the sandbox scales it
        pauses += 1
        out = round_(out).model_copy(update={"attempt": first.attempt})
    if rounds and pending(out):  # its time spent, by pauses or by slow rounds
        out = out.model_copy(update={"next_wait_s": min(out.next_wait_s, s.inline_poll_s)})
    return out


def _drain_round(inp: DrainNodeInput, deps: Deps) -> DrainNodeOutput:
    ctx, target, s = inp.ctx, inp.node, deps.settings
    now = deps.now()
    prev = inp.drain
    started, deadline, attempt = PollState.begin(prev, now, s.drain_timeout_s)
    evicted = list(prev.evicted) if prev else []
    throttled = prev.throttled if prev else 0
    kube = deps.kube(ctx.cluster_name)
    node = kube.get_node(target.node_name) if target.node_name else None
    if node is None:
        return DrainNodeOutput(
            started_at=started,
            deadline=deadline,
            attempt=attempt,
            done=True,
            next_wait_s=0,
            evicted=evicted,
            detail=["node is gone"],
        )
    # Our mark must stay while we drain, or evicted pods could land here again.
    kube.add_taint(node.metadata.name, s.taint_key, ctx.taint_value, node=node)
    remaining, blocked, holding = [], [], []
    before: dict[OwnerRef, int] = {}
    for raw in kube.pods_on_node(node.metadata.name):
        pod = kube.pod_view(raw)
        if not is_evictable(pod):
            continue
        if pod.terminating:
            remaining.append(f"pod {pod.ref} is terminating")
            continue
        if pod.do_not_disrupt:
            until = deadline_of(pod, started, s.do_not_disrupt_timeout_s)
            if now < until:
                holding.append(until)
                remaining.append(
                    f"pod {pod.ref} is do-not-disrupt: waiting until it finishes or {until.isoformat()}"
                )
                continue
            if s.do_not_disrupt_on_deadline == "fail":
                raise DoNotDisruptDeadlineError(
                    f"do-not-disrupt pod {pod.ref} on {node.metadata.name} still runs at its deadline {until.isoformat()}"
                )
            log.warning("do-not-disrupt pod %s reached its deadline %s: evicting", pod.ref, until)
        why = _refuse(pod, s)
        if why:
            raise EvictionRejectedError(f"cannot drain {node.metadata.name}: {why}")
        if (
            pod.owner is not None
            and pod.owner.kind not in STATUS_KINDS | SKIPPED_KINDS
            and pod.owner not in before
        ):
            # Nothing in this owner's status says how many pods it wants: count them now.
            before[pod.owner] = counted_before(pod.owner.kind, kube.owner_pods(pod.owner))
        try:
            outcome = kube.evict(raw)
        except Exception:
            emit(ctx, Metric.EVICTION_ERRORS, 1)
            raise
        if outcome.status == "evicted":
            owner = (
                OwnerRefModel(kind=pod.owner.kind, namespace=pod.owner.namespace, name=pod.owner.name)
                if pod.owner
                else None
            )
            evicted.append(
                EvictedPod(
                    namespace=pod.namespace,
                    name=pod.name,
                    owner=owner,
                    before=before.get(pod.owner) if pod.owner else None,
                )
            )
            remaining.append(f"pod {pod.ref} evicted, terminating")
            log.info("evicted %s from %s", pod.ref, node.metadata.name)
        elif outcome.status == "blocked":
            emit(ctx, Metric.EVICTION_REFUSALS, 1)
            blocked.append(outcome.detail)
            remaining.append(outcome.detail)
    done = not remaining
    throttled = throttled + 1 if blocked else 0
    # Only do-not-disrupt pods left: they have their own deadline, and what follows it (an
    # eviction at the deadline, then its grace period) gets the drain's full timeout again.
    only_held = bool(holding) and len(holding) == len(remaining)
    held = (prev.held if prev else 0) + 1 if only_held else 0
    if holding:
        deadline = max(deadline, max(holding) + timedelta(seconds=s.drain_timeout_s))
    if done:
        emit(ctx, Metric.DRAIN_DURATION, (now - started).total_seconds())
    idle, wait_s = PollState.pace(prev, remaining, _poll_s(s), s.poll_cap_s, now=now, deadline=deadline)
    if throttled or held:
        wait_s = _next_wait_s(throttled, held, holding, now, s)
    if not done and now >= deadline:
        raise DrainTimeoutError(
            f"node {node.metadata.name} not drained after {s.drain_timeout_s}s: "
            + "; ".join(blocked or remaining)
        )
    return DrainNodeOutput(
        started_at=started,
        deadline=deadline,
        attempt=attempt,
        done=done,
        next_wait_s=0 if done else wait_s,
        idle=idle,
        evicted=evicted,
        blocked=blocked,
        throttled=throttled,
        held=held,
        detail=remaining,
    )


def _next_wait_s(throttled: int, held: int, holding: list[datetime], now: datetime, s: Settings) -> int:
    """While only do-not-disrupt pods keep the node the wait doubles (a job may run for hours:
    the history budget counts these rounds, planning.scope.hold_rounds), and never sleeps past
    the nearest deadline by more than a second."""
    if not held:
        return backoff_s(throttled, s)
    wait = hold_wait_s(held - 1, s.poll_interval_s, s.do_not_disrupt_poll_cap_s)
    to_deadline = math.ceil((min(holding) - now).total_seconds()) + 1
    return max(1, min(wait, to_deadline))


def _owners(evicted: list[EvictedPod]) -> list[tuple[OwnerRefModel, int | None]]:
    """Each owner once, with the highest count seen before its pods were evicted (a later
    round's count misses the pods an earlier round already evicted)."""
    seen: dict[str, tuple[OwnerRefModel, int | None]] = {}
    for e in evicted:
        if e.owner and e.owner.kind not in SKIPPED_KINDS:
            _, prev = seen.get(e.owner.ref, (e.owner, None))
            counts = [c for c in (prev, e.before) if c is not None]
            seen[e.owner.ref] = (e.owner, max(counts) if counts else None)
    return list(seen.values())


def wait_owners_ready(inp: WaitOwnersReadyInput, deps: Deps) -> WaitOwnersReadyOutput:
    """Until every owner of the pods evicted from the node is back at its desired replicas;
    checked again within the call while not (in_call): owners recover within seconds, and while
    other nodes drain the same Deployments (a large batch, waves together) the last of them may
    take as long as their PDB chains, which the state machine would poll round after round."""
    return in_call(
        lambda prev: _owners_round(inp if prev is None else inp.model_copy(update={"wait": prev}), deps),
        lambda out: not out.done,
        deps,
    )


def _owners_round(inp: WaitOwnersReadyInput, deps: Deps) -> WaitOwnersReadyOutput:
    ctx, s = inp.ctx, deps.settings
    now = deps.now()
    started, deadline, attempt = PollState.begin(inp.wait, now, s.owners_ready_timeout_s)
    kube: KubeOps = deps.kube(ctx.cluster_name)
    owners = _owners(inp.evicted)
    pending, waiting_on = [], []
    for o, before in owners:
        ok, detail = kube.workload_ready(OwnerRef(o.kind, o.namespace, o.name), before)
        if not ok:
            pending.append(detail)
            waiting_on.append(o.ref)
    done = not pending
    if done:
        emit(ctx, Metric.OWNERS_RECOVERY_TIME, (now - started).total_seconds())
    # Progress is an owner that recovered, not a ready count that moved: while other nodes drain
    # the same Deployments (a large batch, waves together) their counts move all the time, and
    # polling at the base rate until the last of them recovers would spend the wave's history.
    unchanged = inp.wait is not None and inp.wait.waiting_on == waiting_on
    idle, wait_s = PollState.pace(
        inp.wait, pending, _poll_s(s), s.poll_cap_s, now=now, deadline=deadline, unchanged=unchanged
    )
    if not done and now >= deadline:
        raise OwnersNotReadyError(
            f"workloads evicted from {inp.node.node_name} did not recover within {s.owners_ready_timeout_s}s: "
            + "; ".join(pending)
        )
    return WaitOwnersReadyOutput(
        started_at=started,
        deadline=deadline,
        attempt=attempt,
        done=done,
        next_wait_s=0 if done else wait_s,
        idle=idle,
        owners=[o.ref for o, _ in owners],
        waiting_on=waiting_on,
        detail=pending,
    )
