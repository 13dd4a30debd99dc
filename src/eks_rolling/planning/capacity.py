"""Will a batch's surge hold what its drain evicts? Pure: the plan predicts a shortfall from a
snapshot, and SurgeCapacity sizes each surge with the same simulation on live data.

The model, per batch:
- the pods to place are the evictable pods on the batch's old nodes (DaemonSet pods stay with
  their node; each new node runs its own copy, so their requests are taken off its room);
- the room is the up-to-date nodes of the group (allocatable minus the requests of their
  unfinished pods) plus the instances the surge launches, each with the allocatable of the
  launch template's instance type (the replaced node's when the type is unknown);
- the ASG puts each new instance in the zone where it has the fewest instances (ties: the
  group's zone order), as its AZ balancing does; old nodes count until their batch ends;
- pods whose volumes pin them to a zone (EBS) must find room in that zone, the others anywhere;
  they are placed largest first, each on the first node it fits (a bin packing that the
  scheduler's spreading can only match or beat in total, not per node: a plan that fits here
  may still leave a pod Pending on fragmentation, which the roll's owner wait then reports).

Old nodes are all tainted before the first batch, so nothing moves back onto them. Nodes of
other groups are not counted: their selectors and taints usually keep the group's pods off."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..models import Finding, NodeTarget, SurgePlan
from .resources import Resources, instance_capacity
from .snapshot import ClusterSnapshot, NodeView, PodView

# A batch never surges more than this many instances per old node it replaces: needing more
# means the new instance type is far smaller than the old one (or the pods never fit), which
# asks for a person to resize the group, not for the roll to double it on its own.
MAX_SURGE_PER_OLD_NODE = 2


@dataclass
class Bin:
    """Room on one (possibly future) node."""

    az: str
    free: Resources
    slots: int

    def take(self, pod: Resources) -> bool:
        if self.slots < 1 or not pod.fits_in(self.free):
            return False
        self.free, self.slots = self.free - pod, self.slots - 1
        return True


@dataclass(frozen=True)
class Demand:
    """A pod to place: its requests and the zone it must stay in (None: any)."""

    ref: str
    requests: Resources
    zone: str | None


@dataclass
class Fit:
    surge: int  # instances launched for the batch
    unplaced: list[Demand] = field(default_factory=list)
    new_azs: list[str] = field(default_factory=list)  # where the surge instances went

    @property
    def ok(self) -> bool:
        return not self.unplaced


def new_node_room(
    target_type: str | None, fallback: Resources | None, overhead: Resources, max_pods: int, ds_pods: int
) -> tuple[Resources, int] | None:
    """The room a freshly launched node offers the batch's pods: its allocatable less the
    requests of the DaemonSet pods it will run. None when neither the launch template's type
    nor the replaced node's allocatable is known: then nothing can be predicted."""
    cap = instance_capacity(target_type) if target_type else None
    if cap is None and fallback is None:
        return None
    alloc = cap.allocatable if cap else (fallback or Resources())
    pods = cap.max_pods if cap else max_pods
    return alloc - overhead, pods - ds_pods


def place(demands: Iterable[Demand], bins: list[Bin]) -> list[Demand]:
    """Largest first, each on the first bin with room in its zone; returns what did not fit."""
    left = []
    # Newest bins first: the surge's own nodes have the room, earlier ones are mostly full, so
    # a large group's plan stays about linear in pods.
    order = bins[::-1]
    for d in sorted(demands, key=lambda d: (d.zone is None, -d.requests.cpu_m, -d.requests.memory, d.ref)):
        if not any(b.take(d.requests) for b in order if d.zone is None or b.az == d.zone):
            left.append(d)
    return left


def fit_batch(
    demands: Sequence[Demand],
    bins: Sequence[Bin],
    counts: Counter[str],
    zones: Sequence[str],
    room: tuple[Resources, int],
    *,
    at_least: int,
    at_most: int,
) -> Fit:
    """The fewest surge instances (from `at_least` to `at_most`) whose room, with `bins`,
    holds `demands`; the last try's leftovers if none does. `counts` (instances per zone) is
    updated with the instances of the result."""
    best = Fit(at_most)
    for n in range(max(at_least, 0), max(at_least, at_most) + 1):
        trial = [Bin(b.az, b.free, b.slots) for b in bins]
        c = Counter(counts)
        azs = []
        for _ in range(n):
            az = min(zones, key=lambda z: (c[z], zones.index(z)))
            c[az] += 1
            azs.append(az)
            trial.append(Bin(az, room[0], room[1]))
        left = place(demands, trial)
        best = Fit(n, left, azs)
        if not left:
            break
    counts.update(best.new_azs)
    return best


def demands_of(pods: Iterable[PodView]) -> list[Demand]:
    """The pods a drain moves (kubectl drain's filters) as demands on the new nodes."""
    return [Demand(p.ref, p.requests, p.zone) for p in pods if p.evictable]


def daemon_overhead(pods: Iterable[PodView]) -> tuple[Resources, int]:
    total, n = Resources(), 0
    for p in pods:
        if p.daemonset and not p.finished:
            total, n = total + p.requests, n + 1
    return total, n


@dataclass
class CapacityPlan:
    findings: list[Finding]
    surges: list[int]  # instances each batch launches
    peak_desired: int


def plan_capacity(
    snap: ClusterSnapshot, batches: Sequence[Sequence[NodeTarget]], original_desired: int | None = None
) -> CapacityPlan:
    """Simulate the roll batch by batch: how many instances each surge launches and which
    batches cannot be held (a blocker per batch and zone, with the cpu and memory missing).

    `original_desired`: the group's size before the roll (default: now). Each surge brings the
    group to at least that plus the batch, as the roll always did; more when the room needs it."""
    asg = snap.asg
    original = asg.desired if original_desired is None else original_desired
    live = [i for i in asg.instances if not i.lifecycle_state.startswith("Terminat")]
    zones = list(asg.availability_zones) or sorted({i.az for i in live})
    counts: Counter[str] = Counter(i.az for i in live)
    nodes_by_instance = {n.instance_id: n for n in snap.nodes if n.instance_id}
    pods_by_node: dict[str, list[PodView]] = {}
    for p in snap.pods:
        pods_by_node.setdefault(p.node, []).append(p)
    bins: list[Bin] = []
    booting = []  # up-to-date instances with no node yet: a surge under way
    for i in live:
        n = nodes_by_instance.get(i.instance_id)
        if i.outdated:
            continue
        if n is not None and n.allocatable is not None:
            bins.append(Bin(n.az or i.az, n.allocatable - n.used, n.max_pods - n.pod_count))
        else:
            booting.append(i.az)
    findings: list[Finding] = []
    surges: list[int] = []
    desired = asg.desired
    peak = desired
    for k, batch in enumerate(batches, start=1):
        nodes = [nodes_by_instance.get(t.instance_id) for t in batch]
        on_old = [p for n in nodes if n for p in pods_by_node.get(n.name, [])]
        overhead, ds_pods = daemon_overhead(on_old)
        per_node = max(1, sum(1 for n in nodes if n))
        room = new_node_room(
            asg.target_instance_type,
            _first_allocatable(nodes),
            Resources(-(-overhead.cpu_m // per_node), -(-overhead.memory // per_node)),
            max((n.max_pods for n in nodes if n), default=110),
            -(-ds_pods // per_node),
        )
        floor = original + len(batch) - desired  # never less than the batch back, as always
        if room is None:
            surges.append(max(floor, 0))
            desired += max(floor, 0) - len(batch)
            peak = max(peak, desired + len(batch))
            continue
        bins += [Bin(az, room[0], room[1]) for az in booting]
        booting = []
        demands = demands_of(on_old)
        fit = fit_batch(
            demands, bins, counts, zones, room, at_least=floor, at_most=len(batch) * MAX_SURGE_PER_OLD_NODE
        )
        surges.append(fit.surge)
        desired += fit.surge
        peak = max(peak, desired)
        if not fit.ok:
            findings += shortfall_findings(k, batch, fit, room[0])
        # What the batch placed stays; its old instances go (terminated with decrement).
        bins = _after(bins, fit, room, demands)
        for t in batch:
            counts[t.az] -= 1
        desired -= len(batch)
    return CapacityPlan(findings, surges, peak)


def _first_allocatable(nodes: Sequence[NodeView | None]) -> Resources | None:
    return next((n.allocatable for n in nodes if n and n.allocatable), None)


def _after(bins: list[Bin], fit: Fit, room: tuple[Resources, int], demands: Sequence[Demand]) -> list[Bin]:
    out = bins + [Bin(az, room[0], room[1]) for az in fit.new_azs]
    place(demands, out)
    return [b for b in out if b.slots > 0 and (b.free.cpu_m > 0 or b.free.memory > 0)]


def shortfall_findings(k: int, batch: Sequence[NodeTarget], fit: Fit, room: Resources) -> list[Finding]:
    """One blocker per zone the batch's pods cannot be held in (None: pods free to go anywhere)."""
    names = ", ".join(t.node_name or t.instance_id for t in batch)
    by_zone: dict[str | None, list[Demand]] = {}
    for d in fit.unplaced:
        by_zone.setdefault(d.zone, []).append(d)
    out = []
    for zone, left in sorted(by_zone.items(), key=lambda kv: kv[0] or ""):
        need = sum((d.requests for d in left), Resources())
        where = f"in {zone} (pods bound to it by their volumes)" if zone else "in any zone"
        too_big = [d.ref for d in left if not d.requests.fits_in(room)]
        why = f"; {', '.join(too_big[:3])} request more than a new node can hold ({room})" if too_big else ""
        out.append(
            Finding(
                severity="blocker",
                kind="capacity",
                node=batch[0].node_name,
                ref=zone,
                message=(
                    f"batch {k} ({names}): a surge of {fit.surge} new node(s) cannot hold its evicted pods "
                    f"{where}: missing {need.cpu_m}m cpu, {_mi(need.memory)} memory for "
                    f"{len(left)} pod(s) ({', '.join(d.ref for d in left[:3])}{', ...' if len(left) > 3 else ''})"
                    f"{why}"
                ),
            )
        )
    return out


def _mi(n: int) -> str:
    return f"{-(-n // (1024 * 1024))}Mi"


def with_capacity_peak(
    surge: SurgePlan, cap: CapacityPlan, raise_max_size: bool
) -> tuple[SurgePlan, list[Finding]]:
    """The surge plan once capacity asks for more instances than one per old node."""
    if cap.peak_desired <= surge.peak_desired:
        return surge, []
    peak = cap.peak_desired
    surge = surge.model_copy(update={"peak_desired": peak})
    if peak <= surge.max_before:
        return surge, []
    if raise_max_size:
        surge = surge.model_copy(update={"raise_max_to": peak})
        return surge, [
            Finding(
                severity="warning",
                kind="raise-max-size",
                message=f"the pods' requests need a surge to {peak} instances; MaxSize {surge.max_before} will be raised to {peak} during the roll and restored after",
            )
        ]
    return surge, [
        Finding(
            severity="blocker",
            kind="max-size",
            message=f"the pods' requests need a surge to {peak} instances but MaxSize is {surge.max_before} and raising it is not allowed",
        )
    ]
