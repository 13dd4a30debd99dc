"""build_plan(snapshot, policy) -> Plan: which instances are outdated, in what order and batches,
and what will block the roll before anything moves."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from ..labels import LABEL_HOSTNAME
from ..models import Finding, HeldPod, NodeTarget, OutOfScope, Plan, SurgePlan
from .budget import (
    ASSUMED_POLL_ROUNDS_PER_NODE,
    ASSUMED_REDIS_ROUNDS_PER_POD,
    ASSUMED_REDIS_ROUNDS_PER_SENTINEL_MASTER,
    ASSUMED_WAIT_ROUNDS_PER_BATCH,
    EVENTS_FIXED,
    EVENTS_PER_BATCH,
    EVENTS_PER_NODE,
    EVENTS_PER_WAIT_ROUND,
    estimate_history_events,
    max_nodes_per_execution,
)
from .capacity import plan_capacity, with_capacity_peak
from .scope import DeadlineError, describe_deadline, hold_rounds, parse_deadline, scope_decisions, seconds_of
from .selectors import selector_matches
from .snapshot import ClusterSnapshot, InstanceView, NodeView, PdbView, PodView, Policy, Taint
from .together import decide
from .waves import (
    GUARD_FACTOR,
    HISTORY_GUARD_EVENTS,
    canary_split,
    group_waves,
    oversized,
    parent_events,
    waves_of,
)

# Lifecycle states an outdated instance can be in and still be ours to replace. Terminating ones
# are already going; Warmed ones are not serving.
REPLACEABLE_STATES = {"InService", "Pending", "Pending:Wait", "Pending:Proceed", "Standby"}
# The history budget lives in .budget (shared with .waves); re-exported for its callers.
__all__ = [
    "ASSUMED_POLL_ROUNDS_PER_NODE",
    "ASSUMED_REDIS_ROUNDS_PER_POD",
    "ASSUMED_REDIS_ROUNDS_PER_SENTINEL_MASTER",
    "ASSUMED_WAIT_ROUNDS_PER_BATCH",
    "EVENTS_FIXED",
    "EVENTS_PER_BATCH",
    "EVENTS_PER_NODE",
    "EVENTS_PER_WAIT_ROUND",
    "build_plan",
    "estimate_history_events",
    "max_nodes_per_execution",
]

# The plan is a state of the state machine (256 KiB at most) and its blockers go into an error
# cause and an SNS message: findings that repeat per pod are kept to this many per kind, then
# counted, so the plan never grows with pods x nodes (tests/contract/test_state_size.py).
MAX_FINDINGS_PER_KIND = 10


def build_plan(snap: ClusterSnapshot, policy: Policy) -> Plan:
    findings: list[Finding] = []
    asg = snap.asg
    outdated = [i for i in asg.instances if i.outdated and i.lifecycle_state in REPLACEABLE_STATES]
    for i in asg.instances:
        if i.outdated and i.lifecycle_state not in REPLACEABLE_STATES:
            findings.append(
                Finding(
                    severity="warning",
                    kind="instance-skipped",
                    message=f"instance {i.instance_id} is {i.lifecycle_state}; it is not planned",
                )
            )
    node_by_instance = {n.instance_id: n for n in snap.nodes if n.instance_id}
    decisions = scope_decisions(outdated, node_by_instance, policy.scope)
    outside = [d for d in decisions if d.reason]
    outdated_all, outdated = outdated, [d.instance for d in decisions if not d.reason]
    if outside:
        findings.append(
            Finding(
                severity="warning",
                kind="out-of-scope",
                message=f"{len(outside)} of {len(outdated_all)} outdated instance(s) are out of scope and keep the old template",
            )
        )
    pods_by_node: dict[str, list[PodView]] = defaultdict(list)
    for p in snap.pods:
        pods_by_node[p.node].append(p)

    targets: list[NodeTarget] = []
    for inst in outdated:
        node = node_by_instance.get(inst.instance_id)
        movable = [p for p in pods_by_node.get(node.name, [])] if node else []
        movable = [p for p in movable if is_evictable(p)]
        targets.append(
            NodeTarget(
                instance_id=inst.instance_id,
                node_name=node.name if node else None,
                az=inst.az,
                pods=len(movable),
            )
        )
        if node is None:
            findings.append(
                Finding(
                    severity="warning",
                    kind="no-node",
                    message=f"instance {inst.instance_id} has no Kubernetes node; it will be terminated without a drain",
                )
            )
        else:
            findings.extend(_pod_findings(node, movable, snap.pdbs, policy))
    held, held_findings, held_rounds = _held_pods(targets, pods_by_node, snap, policy)
    findings += held_findings
    findings.extend(_redis_findings(snap, targets, pods_by_node, node_by_instance, policy))
    findings.extend(_dedupe_pdb_findings(findings))
    findings = [f for f in findings if f.kind != "_pdb"]

    batch = min(policy.batch_size, len(outdated)) if outdated else 0
    peak = asg.desired + batch
    surge = SurgePlan(desired_before=asg.desired, max_before=asg.max_size, peak_desired=peak)
    if peak > asg.max_size:
        if policy.raise_max_size:
            surge = surge.model_copy(update={"raise_max_to": peak})
            findings.append(
                Finding(
                    severity="warning",
                    kind="raise-max-size",
                    message=f"surge needs {peak} instances; MaxSize {asg.max_size} will be raised to {peak} during the roll and restored after",
                )
            )
        else:
            findings.append(
                Finding(
                    severity="blocker",
                    kind="max-size",
                    message=f"surge needs {peak} instances but MaxSize is {asg.max_size} and raising it is not allowed",
                )
            )
    if outdated and not snap.autoscaler_found:
        findings.append(
            Finding(
                severity="warning",
                kind="no-autoscaler",
                message="cluster-autoscaler Deployment not found; nothing to pause",
            )
        )

    masters = {p for g in snap.redis_groups if g.kind == "sentinel" for p in g.master_pods}
    # Sentinel masters' nodes go last: their switchovers then see the group's replicas moved.
    last = {p.node for p in snap.pods if p.ref in masters}
    # The canary (one node per zone, by default) is the first wave: the health gate bakes it
    # before any other old node is touched.
    canary, rest = canary_split(targets, policy.canary_per_az, last)
    canary_batches = make_batches(canary, policy.batch_size, last=last)
    batches = canary_batches + make_batches(
        rest, policy.batch_size, last=last, az_sequential=policy.az_sequential
    )
    ordered = [t for b in batches for t in b]
    capacity = plan_capacity(snap, batches)
    surge, peak_findings = with_capacity_peak(surge, capacity, policy.raise_max_size)
    findings += capacity.findings + peak_findings
    if policy.redis_supported or held_rounds:
        rounds = _redis_rounds(pods_by_node, ordered, masters) if policy.redis_supported else {}
        batches = [
            [
                t.model_copy(
                    update={
                        "redis_rounds": rounds.get(t.instance_id, 0),
                        "held_rounds": held_rounds.get(t.instance_id, 0),
                    }
                )
                for t in b
            ]
            for b in batches
        ]
    sizing = {
        "wave_budget": policy.wave_history_events,
        "max_nodes": policy.max_nodes_per_wave,
        "max_batches": policy.max_batches_per_wave,
        "hook_steps": policy.hook_steps,
    }
    # The canary's batches never share a wave with the others: the gate runs between waves.
    canary_shapes = group_waves(batches[: len(canary_batches)], **sizing)
    shapes = canary_shapes + group_waves(batches[len(canary_batches) :], **sizing)
    events = (
        sum(s.expected_events for s in shapes) + parent_events(len(shapes), policy.bake_rounds) + EVENTS_FIXED
    )
    together = decide(snap, policy, [t for b in batches for t in b], len(shapes))
    findings += together.findings
    if together.concurrency > 1:
        # One surge for every old node replaces the per-batch one, and so do its MaxSize findings.
        findings = [f for f in findings if f.kind not in ("raise-max-size", "max-size")]
        surge, raise_note = _together_surge(surge, together.peak_desired)
        findings += raise_note
    too_big = [s for s in shapes if oversized(s)]
    if too_big:
        findings.append(
            Finding(
                severity="blocker",
                kind="history-limit",
                message=f"a batch of {too_big[0].nodes} nodes cannot fit one child execution's history "
                f"({HISTORY_GUARD_EVENTS} events with every polling loop at {GUARD_FACTOR}x its measured rounds); "
                "lower the batch size",
            )
        )
    findings = bounded(findings)
    return Plan(
        asg_name=asg.name,
        target_version=asg.target_version,
        outdated=len(outdated_all),
        # A plan over the history limit never runs: its order would only make the state huge.
        batches=[] if any(f.kind == "history-limit" for f in findings) else batches,
        waves=[]
        if any(f.kind == "history-limit" for f in findings)
        else waves_of(shapes, canary=len(canary_shapes), surge_over_old=together.surge_over_old),
        wave_concurrency=together.concurrency,
        canary_per_az=policy.canary_per_az,
        canary_nodes=len(canary),
        findings=findings,
        surge=surge,
        estimated_history_events=events,
        has_work=bool(outdated),
        blocked=any(f.severity == "blocker" for f in findings),
        out_of_scope=len(outside),
        excluded=[
            OutOfScope(
                instance_id=d.instance.instance_id,
                node_name=d.node.name if d.node else None,
                az=d.instance.az,
                reason=d.reason,
            )
            for d in outside[:MAX_FINDINGS_PER_KIND]
        ],
        held=held[:MAX_FINDINGS_PER_KIND],
        az_sequential=policy.az_sequential,
    )


def _together_surge(surge: SurgePlan, peak: int) -> tuple[SurgePlan, list[Finding]]:
    """The surge of waves run together: every old node's replacement at once (MaxSize raised for
    it: planning.together has checked that it may be), and the finding that says so."""
    if peak <= surge.max_before:
        return surge.model_copy(update={"peak_desired": peak, "raise_max_to": None}), []
    note = Finding(
        severity="warning",
        kind="raise-max-size",
        message=f"waves together surge to {peak} instances; MaxSize {surge.max_before} will be raised to {peak} during the roll and restored after",
    )
    return surge.model_copy(update={"peak_desired": peak, "raise_max_to": peak}), [note]


def _held_pods(
    targets: list[NodeTarget], pods_by_node: dict[str, list[PodView]], snap: ClusterSnapshot, policy: Policy
) -> tuple[list[HeldPod], list[Finding], dict[str, int]]:
    """Do-not-disrupt pods on planned nodes, with their deadlines; a deadline that does not parse
    blocks the plan. Returns the DrainNode rounds each node may wait (its wave's budget and guard)."""
    held: list[HeldPod] = []
    findings: list[Finding] = []
    rounds: dict[str, int] = {}
    for t in targets:
        longest = -1
        for p in pods_by_node.get(t.node_name or "", []):
            if not (p.do_not_disrupt and is_evictable(p)):
                continue
            try:
                if p.disrupt_deadline:
                    parse_deadline(p.disrupt_deadline)
            except DeadlineError as exc:
                findings.append(
                    Finding(
                        severity="blocker",
                        kind="do-not-disrupt-deadline",
                        node=t.node_name,
                        ref=p.ref,
                        message=f"pod {p.ref}: bad do-not-disrupt deadline: {exc}",
                    )
                )
                continue
            held.append(
                HeldPod(
                    ref=p.ref,
                    node=p.node,
                    deadline=describe_deadline(p, policy.do_not_disrupt_timeout_s),
                    on_deadline="evict" if policy.do_not_disrupt_on_deadline == "evict" else "fail",
                )
            )
            longest = max(
                longest, seconds_of(p.disrupt_deadline, policy.do_not_disrupt_timeout_s, snap.taken_at)
            )
        if longest >= 0:
            rounds[t.instance_id] = hold_rounds(
                longest, policy.poll_interval_s, policy.do_not_disrupt_poll_cap_s
            )
    if held:
        findings.append(
            Finding(
                severity="warning",
                kind="do-not-disrupt",
                message=f"{len(held)} do-not-disrupt pod(s) hold their node until they finish or their deadline, then the roll will {'evict them' if policy.do_not_disrupt_on_deadline == 'evict' else 'stop (DoNotDisruptDeadlineError)'}",
            )
        )
    return held, findings, rounds


def _redis_rounds(
    pods_by_node: dict[str, list[PodView]], ordered: list[NodeTarget], masters: set[str]
) -> dict[str, int]:
    """MoveRedisPods rounds each old node is expected to need (its wave's guard must allow them)."""
    out: dict[str, int] = {}
    for t in ordered:
        pods = [p for p in pods_by_node.get(t.node_name or "", []) if p.redis_group]
        if pods:
            out[t.instance_id] = sum(
                ASSUMED_REDIS_ROUNDS_PER_SENTINEL_MASTER if p.ref in masters else ASSUMED_REDIS_ROUNDS_PER_POD
                for p in pods
            )
    return out


def bounded(findings: list[Finding], per_kind: int | None = None) -> list[Finding]:
    """The first `per_kind` findings of each (severity, kind), then one that counts the rest."""
    per_kind = MAX_FINDINGS_PER_KIND if per_kind is None else per_kind
    seen: Counter[tuple[str, str]] = Counter()
    out = []
    for f in findings:
        seen[(f.severity, f.kind)] += 1
        if seen[(f.severity, f.kind)] <= per_kind:
            out.append(f)
    for (severity, kind), n in seen.items():
        if n > per_kind:
            out.append(
                Finding(
                    severity=severity,  # type: ignore[arg-type]
                    kind=kind,
                    message=f"... and {n - per_kind} more {kind} findings like the {per_kind} above",
                )
            )
    return out


def is_evictable(p: PodView) -> bool:
    """kubectl drain's filters: DaemonSet and mirror pods stay, finished pods don't matter."""
    return p.evictable


def _pod_findings(
    node: NodeView, pods: Iterable[PodView], pdbs: tuple[PdbView, ...], policy: Policy
) -> list[Finding]:
    out: list[Finding] = []
    taint = Taint(key=policy.taint_key, effect="NoSchedule")
    for p in pods:
        if p.redis_group:
            # Redis pods move through the Redis steps (or block until those are enabled), never
            # through the generic drain: only the PDB checks apply (those steps evict too).
            if policy.redis_supported:
                out += _pdb_findings(node, p, pdbs)
            else:
                out.append(
                    Finding(
                        severity="blocker",
                        kind="redis",
                        node=node.name,
                        ref=p.ref,
                        message=f"pod {p.ref} on {node.name} belongs to managed Redis group {p.redis_group}; it is never evicted generically",
                    )
                )
            continue
        if p.owner is None:
            out.append(
                Finding(
                    severity="blocker",
                    kind="unmanaged-pod",
                    node=node.name,
                    ref=p.ref,
                    message=f"pod {p.ref} on {node.name} has no controller; eviction would lose it",
                )
            )
        if p.has_emptydir and not policy.delete_emptydir_data:
            out.append(
                Finding(
                    severity="blocker",
                    kind="emptydir",
                    node=node.name,
                    ref=p.ref,
                    message=f"pod {p.ref} on {node.name} uses emptyDir; its data is lost on eviction (allow with delete_emptydir_data)",
                )
            )
        if any(t.tolerates(taint) for t in p.tolerations):
            out.append(
                Finding(
                    severity="blocker",
                    kind="tolerates-taint",
                    node=node.name,
                    ref=p.ref,
                    message=f"pod {p.ref} tolerates the {policy.taint_key} taint and could be rescheduled onto another old node",
                )
            )
        if p.node_selector.get(LABEL_HOSTNAME) == node.name:
            out.append(
                Finding(
                    severity="blocker",
                    kind="pinned-to-node",
                    node=node.name,
                    ref=p.ref,
                    message=f"pod {p.ref} is pinned to {node.name} by nodeSelector and cannot move",
                )
            )
        out += _pdb_findings(node, p, pdbs)
    return out


def _pdb_findings(node: NodeView, p: PodView, pdbs: tuple[PdbView, ...]) -> list[Finding]:
    """The eviction of `p` as its PDBs will answer it (Redis pods are evicted by the Redis steps)."""
    what = f"Redis pod {p.ref} of group {p.redis_group}" if p.redis_group else f"pod {p.ref}"
    matching = [b for b in pdbs if b.namespace == p.namespace and selector_matches(b.selector, p.labels)]
    if len(matching) > 1:
        names = ", ".join(b.ref for b in matching)
        return [
            Finding(
                severity="blocker",
                kind="multiple-pdbs",
                node=node.name,
                ref=p.ref,
                message=f"{what} is matched by several PodDisruptionBudgets ({names}); the eviction API refuses it",
            )
        ]
    if not matching:
        return []
    b = matching[0]
    if b.expected_pods > 0 and b.desired_healthy >= b.expected_pods:
        return [
            Finding(
                severity="blocker",
                kind="_pdb",
                ref=b.ref,
                message=f"PodDisruptionBudget {b.ref} needs {b.desired_healthy} of {b.expected_pods} pods healthy: it never allows an eviction ({what} on {node.name})",
            )
        ]
    if b.disruptions_allowed == 0:
        return [
            Finding(
                severity="warning",
                kind="_pdb",
                ref=b.ref,
                message=f"PodDisruptionBudget {b.ref} allows no disruption right now ({b.current_healthy} healthy, {b.desired_healthy} needed); evictions will wait",
            )
        ]
    return []


def _dedupe_pdb_findings(findings: list[Finding]) -> list[Finding]:
    """One finding per PDB (the first pod that meets it is named)."""
    seen: set[tuple[str, str | None]] = set()
    out = []
    for f in findings:
        if f.kind != "_pdb" or (f.severity, f.ref) in seen:
            continue
        seen.add((f.severity, f.ref))
        kind = "pdb-no-headroom" if f.severity == "blocker" else "pdb-no-disruptions-now"
        out.append(f.model_copy(update={"kind": kind}))
    return out


def _redis_findings(
    snap: ClusterSnapshot,
    targets: list[NodeTarget],
    pods_by_node: dict[str, list[PodView]],
    node_by_instance: dict[str, NodeView],
    policy: Policy,
) -> list[Finding]:
    """An unhealthy group blocks the roll if any of its pods is on an old node (once per group)."""
    if not policy.redis_supported:
        return []
    views = {g.ref: g for g in snap.redis_groups}
    out: list[Finding] = []
    seen: set[str] = set()
    for t in targets:
        node = node_by_instance.get(t.instance_id)
        for p in pods_by_node.get(node.name, []) if node else []:
            if not p.redis_group or p.redis_group in seen:
                continue
            seen.add(p.redis_group)
            view = views.get(p.redis_group)
            problems = view.problems if view else (f"Redis group {p.redis_group} could not be checked",)
            out += [
                Finding(
                    severity="blocker",
                    kind="redis-unhealthy",
                    node=node.name if node else None,
                    ref=p.redis_group,
                    message=f"Redis group {p.redis_group}: {why}",
                )
                for why in problems
            ]
    return out


def make_batches(
    targets: list[NodeTarget], size: int, *, last: set[str] | None = None, az_sequential: bool = False
) -> list[list[NodeTarget]]:
    """Batches of `size` in `order_targets` order. With `az_sequential`, one zone's nodes all go
    (in batches that never mix zones) before the next zone's start: zones in name order."""
    if not az_sequential:
        ordered = order_targets(targets, last)
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]
    out: list[list[NodeTarget]] = []
    for az in sorted({t.az for t in targets}):
        out += make_batches([t for t in targets if t.az == az], size, last=last)
    return out


def order_targets(targets: list[NodeTarget], last: set[str] | None = None) -> list[NodeTarget]:
    """Alternate availability zones so each batch's surge keeps the ASG balanced, and within a
    zone start with the nodes that move the fewest pods (cheapest first, like Karpenter).

    Nodes in `last` (hosting a Sentinel master) go after all others: by then a replica of the
    group already runs on a new node, so the master has somewhere safe to fail over to."""
    if last:
        early = order_targets([t for t in targets if t.node_name not in last])
        return early + order_targets([t for t in targets if t.node_name in last])
    by_az: dict[str, list[NodeTarget]] = defaultdict(list)
    for t in targets:
        by_az[t.az].append(t)
    queues = [
        sorted(v, key=lambda t: (t.pods, t.instance_id))
        for _, v in sorted(by_az.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    out: list[NodeTarget] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def outdated_instances(instances: Iterable[InstanceView]) -> list[InstanceView]:
    return [i for i in instances if i.outdated and i.lifecycle_state in REPLACEABLE_STATES]
