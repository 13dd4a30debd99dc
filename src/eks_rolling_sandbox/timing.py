"""Timing profiles: how long things take in the sandbox, and the ONE time factor that scales them.

A profile states real-world durations. `profile.timings(factor)` turns them into the sandbox's
wall-clock `Timings`, and the same factor scales the state machine's Waits and retry back-offs
(runner.scaled_time) and the clock the step handlers read (`StepClock`, below). So with factor
0.05 a 90 s EC2 boot takes 4.5 s, a 10 s poll Wait 0.5 s and a 900 s drain deadline 45 s: the
polling rounds, history events, Lambda invocations and their order are those of a real roll; only
the wall clock shrinks. What does not shrink: the time a Lambda takes to run, and real processes
(redis-server), whose own timings are real.

`fast`: today's small constants (controllers.base.Timings defaults), for unit-speed tests. Its
ratios are NOT real (a node boots in 2 s while Waits run at the factor); the clock stays real.

`realistic` (seconds of real time; jitter is per instance / per pod, seeded):

| What | Value | Source |
|---|---|---|
| EC2 running -> Node registered | 60 s +-33 % | 70-80 s launch -> registration with a custom AMI (aws/karpenter-provider-aws#6128); 39 s on c5.xlarge before AMI tuning (awslabs/amazon-eks-ami#1099) |
| Registered -> Ready (CNI up) | 30 s +-33 % | "~120 s" launch -> Ready on Amazon Linux (terraform-aws-modules/terraform-aws-eks#1398); so 60-120 s in all, as issue 10 asks |
| Instance terminated -> Node deleted | 40 s | (ours) EC2 shutdown ~30 s plus the cloud controller's node-lifecycle check; UNVERIFIED |
| Bound -> containers running | 8 s +-33 % | pod start SLO p99 <= 5 s excluding image pull (kubernetes/community sig-scalability/slos/slos.md) plus a cached-layer pull (ours) |
| Running -> Ready | the pod's readinessProbe: initialDelaySeconds + its phase within periodSeconds; 1 s without a probe | kubelet prober (pkg/kubelet/prober) |
| Delete/evict -> pod gone | preStop (sleep action or exec `sleep N`) then SIGTERM then 2 s app exit, bounded by terminationGracePeriodSeconds (default 30 s) | kubelet kuberuntime killContainer; anchors-scale-and-demand.md §A "Leaving a node" |
| Pod change -> Endpoints updated | 1 s | EndpointSlice controller sync + kube-proxy/LB controller reaction (ours) |

The sandbox's own polling (cloud bridge 0.2 s, Redis probes) stays in wall seconds: it only
sets how soon a change is noticed, not the durations above.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from .controllers.base import Timings

DEFAULT_SEED = 10
# The factor the test suite and the runner have always used for the state machine's Waits.
DEFAULT_TIME_FACTOR = 0.05
# Above 1 the sandbox runs slower than real time: its one process (every handler, the API server,
# the controllers, moto) gets F wall seconds of CPU per profile second, as separate Lambdas and a
# real API server would have. A Task's TimeoutSeconds stretch with it (runner.scaled_time); the
# cap keeps a benchmark's wall clock within an hour.
MAX_TIME_FACTOR = 4.0


@dataclass(frozen=True)
class TimingProfile:
    name: str
    node_boot_s: float
    node_ready_s: float
    node_delete_s: float
    pod_start_s: float
    pod_ready_s: float
    pod_exit_s: float
    endpoint_lag_s: float
    jitter: float
    scales_clock: bool  # False only for `fast`, whose durations are not real ones

    def timings(self, factor: float, seed: int = DEFAULT_SEED) -> Timings:
        """The sandbox's wall-clock timings for this profile at time factor `factor`."""
        if not 0 < factor <= MAX_TIME_FACTOR:
            raise ValueError(f"time factor must be in (0, {MAX_TIME_FACTOR:g}], got {factor}")
        if not self.scales_clock:
            return Timings()  # fast: today's values, whatever the factor
        return replace(
            Timings(),
            node_boot_s=self.node_boot_s * factor,
            node_ready_s=self.node_ready_s * factor,
            node_delete_s=self.node_delete_s * factor,
            pod_start_s=self.pod_start_s * factor,
            pod_ready_s=self.pod_ready_s * factor,
            pod_exit_s=self.pod_exit_s * factor,
            endpoint_lag_s=self.endpoint_lag_s * factor,
            spec_scale=factor,
            jitter=self.jitter,
            seed=seed,
        )


_FAST_DEFAULTS = Timings()
FAST = TimingProfile(
    name="fast",
    node_boot_s=_FAST_DEFAULTS.node_boot_s,
    node_ready_s=_FAST_DEFAULTS.node_ready_s,
    node_delete_s=_FAST_DEFAULTS.node_delete_s,
    pod_start_s=_FAST_DEFAULTS.pod_start_s,
    pod_ready_s=_FAST_DEFAULTS.pod_ready_s,
    pod_exit_s=_FAST_DEFAULTS.pod_exit_s,
    endpoint_lag_s=_FAST_DEFAULTS.endpoint_lag_s,
    jitter=0.0,
    scales_clock=False,
)
REALISTIC = TimingProfile(
    name="realistic",
    node_boot_s=60.0,
    node_ready_s=30.0,
    node_delete_s=40.0,
    pod_start_s=8.0,
    pod_ready_s=1.0,
    pod_exit_s=2.0,
    endpoint_lag_s=1.0,
    jitter=0.33,
    scales_clock=True,
)
PROFILES = {p.name: p for p in (FAST, REALISTIC)}


def profile(name: str) -> TimingProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown timing profile {name!r}; known: {', '.join(PROFILES)}") from None


class StepClock:
    """The clock the step handlers read (Deps.now) in a time-scaled sandbox: from `start` on it
    runs 1/factor times faster than the wall clock, so a deadline of N seconds computed in a
    handler passes after N x factor wall seconds, in step with the scaled Waits."""

    def __init__(self, factor: float, start: datetime | None = None) -> None:
        self.factor = factor
        self.start = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        elapsed = (datetime.now(UTC) - self.start).total_seconds()
        return self.start + timedelta(seconds=elapsed / self.factor)
