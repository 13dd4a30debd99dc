"""When have the owners of evicted pods recovered? Deployments, ReplicaSets and StatefulSets say
so in their status (desired ready replicas). Any other owner (a Job, an Argo Rollout, an
operator's custom resource) is judged by one general rule that needs no knowledge of its kind:
its pods are back at the number that were Ready before the drain (for a Job: running, or the
Job completed). Such an owner is never counted as recovered at once."""

from __future__ import annotations

from dataclasses import dataclass

# Owners whose own status says how many replicas they want and have ready.
STATUS_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet"})
# Pods recreated by their node, not by an owner we wait for.
SKIPPED_KINDS = frozenset({"DaemonSet", "Node"})


@dataclass(frozen=True)
class OwnerPods:
    """The owner's pods now, terminating ones left out."""

    present: int
    ready: int
    running: int  # phase Running, Ready or not (batch pods often have no readiness)


def counted_before(kind: str, pods: OwnerPods) -> int:
    """What DrainNode records just before evicting one of the owner's pods."""
    return pods.running if kind == "Job" else pods.ready


def recovered(
    ref: str, kind: str, before: int | None, pods: OwnerPods, job_done: bool = False
) -> tuple[bool, str]:
    """(recovered, why) for an owner not in STATUS_KINDS. `before`: the count DrainNode saw
    before it evicted the first of the owner's pods (None if it did not record one: then at
    least one pod must be back)."""
    if kind == "Job":
        if job_done:
            return True, f"{ref}: complete"
        want = max(before or 0, 1)
        return pods.running >= want, f"{ref}: {pods.running}/{want} pods running (Job not complete)"
    want = max(before or 0, 1)
    return pods.ready >= want, f"{ref}: {pods.ready}/{want} pods ready (as many as before the drain)"
