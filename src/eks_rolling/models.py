"""Typed input and output of every step. Step Functions moves these as JSON between states; each
Lambda parses its `<State>Input` and returns its `<State>Output` (see `steps.py` for the names).

Payloads stay small on purpose (256 KiB per state, 25,000 history events per execution): nodes
are referred to by instance id and name, pods by namespace/name.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- shared pieces --------------------------------------------------------------------------------
class RollScope(Model):
    """A manual start's scope: wins over the ASG's tags and the settings, field by field."""

    node_selector: str = ""
    instance_ids: list[str] = Field(default_factory=list)
    exclude_selector: str = ""


class RollContext(Model):
    """What every step of one ASG's roll needs to know."""

    execution_id: str
    asg_name: str
    cluster_name: str
    dry_run: bool = False
    taint_value: str = Field(description="Value of our taint: identifies this execution's marks")
    scope: RollScope | None = Field(None, description="From the start input (manual starts)")


class NodeTarget(Model):
    instance_id: str
    node_name: str | None
    az: str
    pods: int = 0
    redis_rounds: int = Field(0, description="MoveRedisPods rounds it is expected to need (its guard)")
    held_rounds: int = Field(
        0, description="DrainNode rounds it may wait for do-not-disrupt pods (its guard)"
    )


class Finding(Model):
    severity: Literal["blocker", "warning"]
    kind: str
    message: str
    node: str | None = None
    ref: str | None = None  # namespace/name of the pod or PDB concerned


class SurgePlan(Model):
    desired_before: int
    max_before: int
    peak_desired: int
    raise_max_to: int | None = None


class OutOfScope(Model):
    instance_id: str
    node_name: str | None
    az: str
    reason: str


class HeldPod(Model):
    """A do-not-disrupt pod on a planned node: never evicted; its node waits for it."""

    ref: str
    node: str
    deadline: str = Field(description="When it stops holding its node, for people")
    on_deadline: Literal["fail", "evict"]


class Hooks(Model):
    """The per-node hooks of one ASG's roll (eks_rolling.planning.hooks): Lambda ARNs or https://
    URLs, in the order they run. Empty lists: the wave's Choice states skip the hook steps."""

    pre_drain: list[str] = Field(default_factory=list)
    post_replace: list[str] = Field(default_factory=list)
    pre_drain_from: str = Field("", description="Where they came from: tag or setting")
    post_replace_from: str = Field("", description="Where they came from: tag or setting")


class Wave(Model):
    """One child execution of the roll: consecutive batches sized to fit its own history
    (eks_rolling.planning.waves)."""

    index: int = Field(description="1-based, in roll order")
    name: str = Field(description="The child execution's name: <roll>-<asg>-wNN")
    batches: list[list[NodeTarget]]
    round_scale: int = Field(
        description="The runtime guard: each polling loop may run this x its measured rounds"
    )
    expected_events: int = Field(description="History events expected from measured rounds")
    nodes: int = Field(0, description="Old nodes in the wave")
    bucket: str | None = Field(None, description="Where `key` is, when the batches are stored")
    key: str | None = Field(None, description="S3 key of the batches; `batches` is then empty")
    hooks: Hooks = Field(default_factory=Hooks, description="The roll's per-node hooks")
    canary: bool = Field(False, description="The canary wave: one node per zone, baked first")
    taint_rest: bool = Field(
        False, description="The first wave after the canary: the old nodes not tainted yet are, before it"
    )
    bake_s: int = Field(0, description="How long the health alarms must stay OK after it (0: no gate)")
    surge_over_old: int = Field(
        0,
        description="Waves together (planning.together): SurgeCapacity raises the group to this plus "
        "its live outdated instances; 0: each batch surges for itself",
    )


class Plan(Model):
    asg_name: str
    target_version: str | None
    outdated: int
    batches: list[list[NodeTarget]]
    findings: list[Finding]
    surge: SurgePlan
    estimated_history_events: int
    has_work: bool
    blocked: bool
    # Scope: outdated instances left alone and why (the first few; out_of_scope counts them all).
    out_of_scope: int = 0
    excluded: list[OutOfScope] = Field(default_factory=list)
    held: list[HeldPod] = Field(default_factory=list, description="Do-not-disrupt pods (the first few)")
    az_sequential: bool = False
    maintenance_windows: str = Field("", description="Windows new waves wait for (empty: any time)")
    maintenance_windows_from: str = Field("", description="Where they came from: tag or setting")
    hooks: Hooks = Field(default_factory=Hooks, description="Per-node hooks that apply")
    waves: list[Wave] = Field(default_factory=list, description="The batches as child executions")
    wave_concurrency: int = Field(1, description="Waves at once: the RollWaves Map's MaxConcurrencyPath")
    canary_per_az: int = Field(0, description="Old nodes per zone in the first wave (0: no canary)")
    canary_nodes: int = Field(0, description="Old nodes in the canary wave")
    health_alarms: list[str] = Field(default_factory=list, description="Alarms that must stay OK")
    health_alarms_from: str = Field("", description="Where they came from: tag or setting")
    health_bake_s: int = Field(0, description="How long they must stay OK after every wave")
    revert_on_alarm: bool = Field(False, description="On HealthAlarmError, roll back to previous_version")
    previous_version: str | None = Field(
        None, description="The launch template version of the old instances (what a revert points back at)"
    )

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "blocker"]

    @property
    def nodes(self) -> list[NodeTarget]:
        if self.waves:  # the state machine's copy carries the batches in the waves only
            return [n for w in self.waves for batch in w.batches for n in batch]
        return [n for batch in self.batches for n in batch]


class OwnerRefModel(Model):
    kind: str
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


# Lists in a step's output are for people: the first lines, and how many more. A state holds every
# output of its loop, and at 1,000 nodes one WaitNewNodes output named every pending instance and
# every Ready node: 80,771 bytes, the largest state of a 1,000-node roll (64 KiB is the target).
STATE_LIST_MAX = 20


def bounded(lines: list[str]) -> list[str]:
    """The first STATE_LIST_MAX lines and a count of the rest (it changes as they do, so a poll
    still sees progress beyond the first lines)."""
    if len(lines) <= STATE_LIST_MAX:
        return lines
    return [*lines[:STATE_LIST_MAX], f"... and {len(lines) - STATE_LIST_MAX} more"]


class PollState(Model):
    """A wait loop's progress, carried between iterations of an ASL Wait + Task loop."""

    started_at: datetime
    deadline: datetime
    attempt: int = 0
    done: bool = False
    next_wait_s: int = 1
    detail: list[str] = Field(default_factory=list, description="What is still pending, for people")
    idle: int = Field(0, description="Consecutive checks that saw nothing change (adaptive polling)")

    @field_validator("detail")
    @classmethod
    def _bounded(cls, v: list[str]) -> list[str]:
        return bounded(v)

    @staticmethod
    def pace(
        prev: PollState | None,
        detail: list[str],
        base_s: int,
        cap_s: int,
        *,
        now: datetime,
        deadline: datetime,
        unchanged: bool | None = None,
    ) -> tuple[int, int]:
        """(idle, next_wait_s) of adaptive polling: the wait doubles from `base_s` up to `cap_s`
        while what is pending stays the same, and drops back to `base_s` on any change, so a
        loop's rounds grow with the log of how long the real thing takes, not linearly. It never
        sleeps past the deadline by more than a second: a stuck loop still fails on time.
        `unchanged`: the caller's own notion of "nothing changed" (default: the same detail)."""
        same = prev is not None and prev.detail == bounded(detail) if unchanged is None else unchanged
        idle = prev.idle + 1 if prev is not None and same else 0
        wait = min(max(cap_s, base_s), base_s << min(idle, 30))
        if now < deadline:
            wait = min(wait, math.ceil((deadline - now).total_seconds()) + 1)
        return idle, max(1, wait)

    @staticmethod
    def begin(prev: PollState | None, now: datetime, timeout_s: int) -> tuple[datetime, datetime, int]:
        """(started_at, deadline, attempt) of a wait loop: the first call starts the clock."""
        if prev is None:
            return now, now + timedelta(seconds=timeout_s), 1
        return prev.started_at, prev.deadline, prev.attempt + 1


class AutoscalerState(Model):
    namespace: str
    name: str
    found: bool
    original_replicas: int = 0


class AsgOriginals(Model):
    desired: int
    min_size: int
    max_size: int
    suspended: list[str] = Field(default_factory=list, description="Processes this run suspended")


class EvictedPod(Model):
    namespace: str
    name: str
    owner: OwnerRefModel | None = None
    before: int | None = Field(
        None, description="An owner of another kind: its pods Ready (Job: running) just before this eviction"
    )


class RedisMove(Model):
    """One Redis pod's move off an old node, advanced one phase per round of MoveRedisPods."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    namespace: str
    group: str
    kind: Literal["sentinel", "cluster"]
    pod: str
    role: str
    statefulset: str
    phase: str = "start"
    phase_deadline: datetime | None = None
    done: bool = False
    data: dict[str, Any] = Field(default_factory=dict, description="Procedure state: small, no secrets")

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.pod}"


class DrainState(PollState):
    evicted: list[EvictedPod] = Field(default_factory=list)
    blocked: list[str] = Field(default_factory=list)
    throttled: int = Field(0, description="Consecutive attempts that met a 429")
    held: int = Field(0, description="Consecutive rounds only do-not-disrupt pods kept the node")


def counted(key: str, names: list[str]) -> dict[str, Any]:
    """`key` and `key_count` of a RestoreReport: the first STATE_LIST_MAX names, and how many
    (a rollback of 1,000 nodes untaints and gives back up to 1,000 of each: 68 KB of names)."""
    return {key: names[:STATE_LIST_MAX], f"{key}_count": len(names)}


class RestoreReport(Model):
    autoscaler_replicas: int | None = None
    desired: int | None = None
    max_size: int | None = None
    resumed: list[str] = Field(default_factory=list)
    untainted: list[str] = Field(default_factory=list, description="The first names (see named)")
    untainted_count: int = 0
    terminated_surge: list[str] = Field(default_factory=list, description="The first instance ids")
    terminated_surge_count: int = 0
    notes: list[str] = Field(default_factory=list)


class StepError(Model):
    """What a Catch block puts at `$.error` (Step Functions' own field names)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    error: str = Field(alias="Error")
    cause: str = Field("", alias="Cause")

    def unwrapped(self) -> StepError:
        """A wave's failure reaches the parent as States.TaskFailed (WaveFailedError once the
        wave's own Catch has named it) whose cause is the child's DescribeExecution (JSON): the
        child's own error and cause are the ones to report."""
        if self.error not in ("States.TaskFailed", "WaveFailedError"):
            return self
        try:
            child = json.loads(self.cause)
        except ValueError:
            return self
        if not isinstance(child, dict) or not isinstance(child.get("Error"), str):
            return self
        return StepError(error=child["Error"], cause=str(child.get("Cause") or ""))


# --- step inputs and outputs ------------------------------------------------------------------------
class ResolveTargetInput(Model):
    event: Any  # the execution input, any JSON value: parse_trigger says what is wrong with it
    execution_id: str


class Skipped(Model):
    asg_name: str
    reason: str


class ResolveTargetOutput(Model):
    trigger: str
    targets: list[RollContext]
    skipped: list[Skipped] = Field(default_factory=list)
    has_targets: bool
    asg_concurrency: int = Field(1, description="The ASG Map's MaxConcurrencyPath (settings.asg_concurrency)")


class AcquireLockInput(Model):
    ctx: RollContext


class AcquireLockOutput(Model):
    owner: str
    expires_in_s: int
    took_over_from: str | None = Field(None, description="The dead execution whose lock was taken over")
    restored: RestoreReport | None = Field(None, description="What the dead run left, put back")


class PlanRollInput(Model):
    ctx: RollContext


class PlanRollOutput(Plan):
    pass


class PauseAutoscalerInput(Model):
    ctx: RollContext


class PauseAutoscalerOutput(AutoscalerState):
    pass


class SuspendProcessesInput(Model):
    ctx: RollContext


class SuspendProcessesOutput(AsgOriginals):
    pass


class TaintOldNodesInput(Model):
    ctx: RollContext
    plan: Plan


class TaintOldNodesOutput(Model):
    tainted: list[str]
    missing: list[str] = Field(default_factory=list, description="Planned instances with no node")


class TaintRemainingNodesInput(Model):
    ctx: RollContext
    plan: Plan
    wave: int = Field(description="The first wave after the canary: its nodes and all later ones")


class TaintRemainingNodesOutput(TaintOldNodesOutput):
    pass


class RevertTargetInput(Model):
    ctx: RollContext
    plan: Plan
    error: StepError


class RevertTargetOutput(Model):
    """Rollback's revert (revert_on_alarm after HealthAlarmError): the ASG points back at the
    previous launch template version and the nodes of the rolled version are rolled back to it
    by the wave machine (its waves, empty when there is nothing to revert)."""

    reverted: bool
    version: str | None = Field(None, description="The version the ASG points at now")
    rolled_version: str | None = Field(None, description="The version it pointed at (the bad one)")
    waves: list[Wave] = Field(default_factory=list)
    tainted: list[str] = Field(default_factory=list)
    note: str = ""


class SurgeCapacityInput(Model):
    ctx: RollContext
    batch: list[NodeTarget]
    asg: AsgOriginals
    surge_over_old: int = Field(0, description="The wave's (Wave.surge_over_old); 0: surge for this batch")


class SurgeCapacityOutput(Model):
    desired: int
    max_size: int
    raised_max: bool


class WaitNewNodesOutput(PollState):
    ready_new_nodes: int = Field(0, description="New nodes Ready (their names are in the step's log)")


class WaitNewNodesInput(Model):
    ctx: RollContext
    batch: list[NodeTarget]
    wait: WaitNewNodesOutput | None = Field(None, description="The previous round, None on the first")
    round_scale: int | None = Field(None, description="The wave's guard (eks_rolling.guard)")


class MoveRedisPodsOutput(PollState):
    moves: list[RedisMove] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description="What this round did: the audit trail")


class MoveRedisPodsInput(Model):
    ctx: RollContext
    node: NodeTarget
    redis: MoveRedisPodsOutput | None = Field(None, description="The previous round, None on the first")
    round_scale: int | None = Field(None, description="The wave's guard (eks_rolling.guard)")


class DrainNodeOutput(DrainState):
    pass


class DrainNodeInput(Model):
    ctx: RollContext
    node: NodeTarget
    drain: DrainNodeOutput | None = Field(None, description="The previous round, None on the first")
    round_scale: int | None = Field(None, description="The wave's guard (eks_rolling.guard)")


class WaitOwnersReadyOutput(PollState):
    owners: list[str] = Field(default_factory=list)
    waiting_on: list[str] = Field(default_factory=list, description="The owners not recovered yet")


class WaitOwnersReadyInput(Model):
    ctx: RollContext
    node: NodeTarget
    evicted: list[EvictedPod]
    wait: WaitOwnersReadyOutput | None = Field(None, description="The previous round, None on the first")
    round_scale: int | None = Field(None, description="The wave's guard (eks_rolling.guard)")


class ExcludeFromLoadBalancersInput(Model):
    ctx: RollContext
    node: NodeTarget


class ExcludeFromLoadBalancersOutput(Model):
    node_name: str | None
    wait_s: int


class TerminateInstanceInput(Model):
    ctx: RollContext
    node: NodeTarget
    started_at: datetime | None = Field(
        None, description="When the node's first step started (its replacement duration's start)"
    )


class TerminateInstanceOutput(Model):
    instance_id: str
    terminated: bool
    note: str = ""


class HookCall(Model):
    """One hook target's outcome for one node: the audit trail in the history."""

    target: str
    ok: bool
    attempts: int
    answer: str = Field(description="The last answer, shortened")
    duration_s: float


class HooksInput(Model):
    ctx: RollContext
    node: NodeTarget
    hooks: list[str] = Field(description="The targets of this phase, in order")


class HooksOutput(Model):
    phase: Literal["pre_drain", "post_replace"]
    calls: list[HookCall]


class PreDrainHooksInput(HooksInput):
    pass


class PreDrainHooksOutput(HooksOutput):
    pass


class PostReplaceHooksInput(HooksInput):
    pass


class PostReplaceHooksOutput(HooksOutput):
    pass


class RestoreClusterInput(Model):
    ctx: RollContext
    autoscaler: AutoscalerState
    asg: AsgOriginals


class RestoreClusterOutput(RestoreReport):
    pass


class Control(Model):
    """An operator's pause / resume / abort of a roll: the lock item's `control` (CLI) or the
    ASG tag `eks-rolling/control` (console)."""

    action: Literal["pause", "resume", "abort"]
    by: str = Field(description="Who or what asked: the CLI's caller, or the tag")


class GateState(Model):
    """CheckGate's answer before a wave: go, or wait (a closed window, a pause) and check again."""

    action: Literal["go", "wait"]
    reason: Literal["open", "window", "paused", "resumed", "baking", "healthy"]
    message: str
    wait_s: int = Field(0, description="The Wait state's SecondsPath before the next check")
    wait_until: str | None = Field(None, description="When the next check runs (ISO 8601)")
    opens_at: str | None = Field(None, description="When the next window opens, while waiting for it")
    paused_since: str | None = None
    paused_by: str | None = None
    reminded_at: str | None = None
    bake_since: str | None = Field(None, description="When the wave's bake began (the alarms were OK)")
    baked_s: int = Field(0, description="Seconds of Waits the wave has baked so far, alarms OK")


class CheckGateInput(Model):
    ctx: RollContext
    wave: str = Field(description="The wave about to start, or that just ran (rolled)")
    rolled: bool = Field(False, description="The wave has run: the health gate bakes it")
    bake_s: int = Field(0, description="The wave's bake time (Wave.bake_s)")
    gate: GateState | None = Field(None, description="The previous check's answer, when it said wait")

    @field_validator("gate", mode="before")
    @classmethod
    def _first(cls, v: Any) -> Any:
        return None if v == {} else v  # the wave's first check: the Map's ItemSelector says {}


class CheckGateOutput(GateState):
    pass


class AwaitWindowInput(Model):
    ctx: RollContext
    gate: GateState | None = Field(None, description="The previous check's answer, when it said wait")


class AwaitWindowOutput(GateState):
    pass


class ReleaseLockInput(Model):
    ctx: RollContext


class ReleaseLockOutput(Model):
    released: bool


class RollbackInput(Model):
    ctx: RollContext
    error: StepError
    autoscaler: AutoscalerState | None = None
    asg: AsgOriginals | None = None
    wave_machine: str | None = Field(
        None, description="The wave state machine: its running children are stopped first"
    )


class RollbackOutput(RestoreReport):
    error: str
    cause: str
