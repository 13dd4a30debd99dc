"""Waves together: when capacity and the roll's safety rules allow, the roll surges once for all of
its old nodes and runs its waves as concurrent child executions (Plan.wave_concurrency, the
RollWaves Map's MaxConcurrencyPath). A roll then costs about one boot plus its longest PDB chain,
not one boot per batch.

Concurrent children must not each add their batch to the desired capacity they read: two reads of
D and two writes of D + b lose a surge. Each child's SurgeCapacity instead raises the group to an
absolute floor, `surge_over_old` + the group's live outdated instances. Every child computes the
same number at any moment (a termination with decrement lowers the desired capacity and the old
instances alike), so concurrent writes agree, and the floor never asks for less than is there.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..models import Finding, NodeTarget
from .capacity import plan_capacity
from .snapshot import AsgView, ClusterSnapshot, Policy


@dataclass(frozen=True)
class Together:
    concurrency: int  # child executions at once (1: one wave after another, each batch surging)
    surge_over_old: int = 0  # the floor's constant (0: per-batch surges)
    peak_desired: int = 0
    findings: list[Finding] = field(default_factory=list)


def live_outdated(asg: AsgView) -> int:
    """Outdated instances not already terminating: the floor's count, here on the plan's snapshot
    and in SurgeCapacity on live data (services.snapshot.asg_view)."""
    return sum(1 for i in asg.instances if i.outdated and not i.lifecycle_state.startswith("Terminat"))


def why_one_at_a_time(policy: Policy, targets: Sequence[NodeTarget]) -> str:
    """The safety rule that keeps waves in sequence, if any ('' when none does)."""
    if policy.canary_per_az > 0:
        return "the canary wave is judged before any other old node is touched"
    if policy.bake_rounds > 0:
        return "the health gate bakes each wave before the next"
    if policy.az_sequential:
        return "az_sequential finishes one zone before the next"
    if policy.max_batches_per_wave == 1:
        return "maintenance windows: no wave may start outside one"
    if any(t.redis_rounds for t in targets):
        return "Redis pods move one wave at a time (no two waves move members of one group)"
    return ""


def decide(snap: ClusterSnapshot, policy: Policy, targets: Sequence[NodeTarget], waves: int) -> Together:
    """How many waves run at once, and the surge that lets them: all old nodes' replacements at
    once, sized by the same capacity simulation as a batch (planning.capacity)."""
    if policy.wave_concurrency <= 1 or waves <= 1:
        return Together(1)
    reason = why_one_at_a_time(policy, targets)
    if not reason:
        cap = plan_capacity(snap, [list(targets)])
        room = snap.asg.max_size if not policy.raise_max_size else None
        if cap.findings:
            reason = "a surge for every old node at once cannot hold their pods"
        elif room is not None and cap.peak_desired > room:
            reason = f"a surge for every old node needs {cap.peak_desired} instances, over MaxSize {room}"
        else:
            return Together(
                concurrency=min(policy.wave_concurrency, waves),
                surge_over_old=cap.peak_desired - live_outdated(snap.asg),
                peak_desired=cap.peak_desired,
            )
    note = Finding(
        severity="warning",
        kind="waves-one-at-a-time",
        message=f"wave_concurrency {policy.wave_concurrency} not used, waves run one at a time: {reason}",
    )
    return Together(1, findings=[note])
