"""A roll's progress and timeline, read from its execution histories: the parent's (plan, waves)
and each wave's (one child execution per wave, where the nodes' steps run).

Pure: histories in (GetExecutionHistory events, as boto3 returns them), data out. `eks-rolling
status` prints `render_status`; `eks-rolling report` draws the `Timeline` (eks_rolling.report).

Upstream: the Step Functions history event types (TaskStateEntered, WaitStateEntered,
PassStateEntered with `stateEnteredEventDetails`, and their `stateExitedEventDetails`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The per-node states of the wave's ReplaceNodes Map, in the order a node goes through them,
# with the step family each belongs to (a polling Wait is shown as part of what it polls).
NODE_STEPS: dict[str, str] = {
    "MoveRedisPods": "redis",
    "PauseBeforeRedisCheck": "redis",
    "PreDrainHooks": "hooks",  # only when hooks are set (not in STEP_ORDER: most rolls have none)
    "DrainNode": "drain",
    "BackOffBeforeDrain": "drain",
    "WaitOwnersReady": "owners",
    "PauseBeforeOwnersCheck": "owners",
    "ExcludeFromLoadBalancers": "exclude",
    "DeregistrationDelay": "deregistration",
    "TerminateInstance": "terminate",
    "PostReplaceHooks": "hooks",
    "NodeReplaced": "replaced",
}
WAIT_STATES = frozenset(
    {"PauseBeforeRedisCheck", "BackOffBeforeDrain", "PauseBeforeOwnersCheck", "DeregistrationDelay"}
)
STEP_ORDER = ("redis", "drain", "owners", "exclude", "deregistration", "terminate")
DONE_STATE = "NodeReplaced"
SURGE_STATE, NODES_MAP = "SurgeCapacity", "ReplaceNodes"  # a batch: new nodes first, then its old ones


@dataclass(frozen=True)
class Segment:
    """One stretch of a node in one state (merged when a state repeats back to back)."""

    state: str
    start: datetime
    end: datetime

    @property
    def step(self) -> str:
        return NODE_STEPS[self.state]

    @property
    def waiting(self) -> bool:
        return self.state in WAIT_STATES


@dataclass(frozen=True)
class Mark:
    """A point event on a node's row: evictions, a 429 refusal, a Redis failover."""

    at: datetime
    kind: str  # "evicted" | "refused" | "failover"
    label: str


@dataclass
class NodeRow:
    instance_id: str
    node_name: str | None
    az: str
    wave: int
    segments: list[Segment] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    evicted: int = 0
    refusals: int = 0
    done: bool = False

    @property
    def label(self) -> str:
        return f"{(self.node_name or '(no node)').split('.')[0]} {self.instance_id}"

    @property
    def start(self) -> datetime:
        return self.segments[0].start

    @property
    def end(self) -> datetime:
        return self.segments[-1].end

    @property
    def current(self) -> str:
        return self.segments[-1].state

    def step_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.segments:
            out[s.step] = out.get(s.step, 0.0) + (s.end - s.start).total_seconds()
        return out


@dataclass(frozen=True)
class WaveInfo:
    index: int
    name: str
    nodes: int
    status: str  # the child execution's status; "PENDING" before it started


@dataclass
class Timeline:
    roll: str
    status: str
    start: datetime
    end: datetime
    planned: int  # old nodes in the plan (0 until PlanRoll ran)
    waves: list[WaveInfo]
    rows: list[NodeRow]
    # each batch's surge: from SurgeCapacity until its nodes start (new nodes boot and join)
    surges: list[tuple[datetime, datetime]] = field(default_factory=list)
    step: str = ""  # the latest state entered outside the per-node ones (parent or wave)

    @property
    def done(self) -> list[NodeRow]:
        return [r for r in self.rows if r.done]

    @property
    def in_flight(self) -> list[NodeRow]:
        return [r for r in self.rows if not r.done]

    @property
    def left(self) -> int:
        return max(self.planned - len(self.rows), 0)

    def eta_seconds(self, now: datetime | None = None) -> float | None:
        """Time left at the rate nodes were replaced so far (None before the first one)."""
        if not self.done or self.status != "RUNNING":
            return None if self.status == "RUNNING" else 0.0
        now = now or self.end
        first = min(r.start for r in self.rows)
        rate = len(self.done) / max((now - first).total_seconds(), 1e-6)  # nodes per second
        return (self.planned - len(self.done)) / rate


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "null")
    except ValueError:
        return None


def _node_of(doc: Any) -> dict[str, Any] | None:
    node = doc.get("node") if isinstance(doc, dict) else None
    return node if isinstance(node, dict) and node.get("instance_id") else None


def _waves(parent: Sequence[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """(planned old nodes, the plan's waves) from PlanRoll's output in the parent's history."""
    for ev in parent:
        det = ev.get("stateExitedEventDetails")
        if det and det["name"] == "PlanRoll":
            plan = (_json(det.get("output")) or {}).get("plan") or {}
            waves = [w for w in plan.get("waves") or [] if isinstance(w, dict)]
            planned = sum(int(w.get("nodes") or 0) for w in waves) or int(plan.get("outdated") or 0) - int(
                plan.get("out_of_scope") or 0
            )
            return max(planned, 0), waves
    return 0, []


def wave_executions(parent: Sequence[dict[str, Any]]) -> list[str]:
    """The child execution ARNs the parent started, in start order, from its RollWave tasks'
    parameters (the wave machine's ARN and the child's name make the execution's ARN)."""
    out: list[str] = []
    for ev in parent:
        det = ev.get("taskScheduledEventDetails")
        if not det or det.get("resourceType") != "states":
            continue
        params = _json(det.get("parameters")) or {}
        machine = params.get("StateMachineArn") or params.get("stateMachineArn")
        name = params.get("Name") or params.get("name")
        if machine and name:
            arn = str(machine).replace(":stateMachine:", ":execution:") + f":{name}"
            if arn not in out:
                out.append(arn)
    return out


def _marks(state: str, at: datetime, out: Any, row: NodeRow) -> None:
    """What a node step's output says happened: pods evicted, 429s, Redis failovers."""
    if not isinstance(out, dict):
        return
    drain = out.get("drain") if state == "DrainNode" else None
    if isinstance(drain, dict):
        evicted = len(drain.get("evicted") or [])
        if evicted > row.evicted:
            row.marks.append(Mark(at, "evicted", f"{evicted - row.evicted} evicted"))
            row.evicted = evicted
        if drain.get("throttled"):
            row.refusals += 1
            row.marks.append(Mark(at, "refused", "429"))
    redis = out.get("redis") if state == "MoveRedisPods" else None
    if isinstance(redis, dict):
        for move in redis.get("moves") or []:
            data = (move or {}).get("data") or {}
            label = f"{move.get('pod')} failover"
            # marked when the history first shows it (failover_at is on the steps' clock, which
            # the sandbox may scale): a Cluster failover, or each Sentinel switchover
            if data.get("failover_at") and not any(m.label == label for m in row.marks):
                row.marks.append(Mark(at, "failover", label))
            for i, sw in enumerate(data.get("switchovers") or [], 1):
                what = f"{move.get('pod')} switchover {i}: writes held {sw.get('paused_ms', 0):.0f} ms"
                if not any(m.label.startswith(f"{move.get('pod')} switchover {i}:") for m in row.marks):
                    row.marks.append(Mark(at, "failover", what))


def build_timeline(
    roll: str,
    status: str,
    parent: Sequence[dict[str, Any]],
    children: Iterable[tuple[str, str, Sequence[dict[str, Any]]]],
    now: datetime | None = None,
) -> Timeline:
    """`children`: (execution name, status, history) of each wave, in start order."""
    planned, plan_waves = _waves(parent)
    started = [_ts(ev["timestamp"]) for ev in parent[:1]]
    latest = _latest_step(parent, None)
    rows: dict[str, NodeRow] = {}
    seen: dict[str, WaveInfo] = {}
    last = started[0] if started else now or datetime.now(UTC)
    surges: list[tuple[datetime, datetime]] = []
    for index, (name, child_status, history) in enumerate(children, 1):
        seen[name] = WaveInfo(index, name, 0, child_status)
        latest = _latest_step(history, latest)
        surging: datetime | None = None
        for ev in history:
            at = _ts(ev["timestamp"])
            last = max(last, at)
            entered, exited = ev.get("stateEnteredEventDetails"), ev.get("stateExitedEventDetails")
            det = entered or exited
            if entered and entered["name"] == SURGE_STATE:
                surging = at
            elif entered and entered["name"] == NODES_MAP and surging is not None:
                surges.append((surging, at))
                surging = None
            if not det or det["name"] not in NODE_STEPS:
                continue
            node = _node_of(_json(det.get("input") if entered else det.get("output")))
            if node is None:
                continue
            row = rows.setdefault(
                node["instance_id"],
                NodeRow(node["instance_id"], node.get("node_name"), str(node.get("az") or ""), index),
            )
            if exited:
                _marks(det["name"], at, _json(det.get("output")), row)
                continue
            if row.segments:  # the previous state lasted until this one started
                prev = row.segments[-1]
                row.segments[-1] = Segment(prev.state, prev.start, at)
                if prev.state == det["name"]:
                    continue
            row.segments.append(Segment(det["name"], at, at))
            row.done = row.done or det["name"] == DONE_STATE
    end = now or last
    for row in rows.values():  # a node still in flight is in its state until now
        if not row.done:
            tail = row.segments[-1]
            row.segments[-1] = Segment(tail.state, tail.start, max(end, tail.start))
    waves = []
    for i, w in enumerate(plan_waves, 1):
        info = seen.get(str(w.get("name")))
        waves.append(
            WaveInfo(
                int(w.get("index") or i),
                str(w.get("name")),
                int(w.get("nodes") or 0),
                info.status if info else "PENDING",
            )
        )
    if not waves:
        waves = list(seen.values())
    ordered = sorted(rows.values(), key=lambda r: (r.start, r.instance_id))
    return Timeline(
        roll,
        status,
        started[0] if started else end,
        end,
        planned or len(rows),
        waves,
        ordered,
        surges,
        latest[1] if latest else "",
    )


def _latest_step(
    history: Sequence[dict[str, Any]], latest: tuple[datetime, str] | None
) -> tuple[datetime, str] | None:
    for ev in history:
        det = ev.get("stateEnteredEventDetails")
        if det and det["name"] not in NODE_STEPS:
            at = _ts(ev["timestamp"])
            if latest is None or at >= latest[0]:
                latest = (at, det["name"])
    return latest


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown until the first node is replaced"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def render_status(t: Timeline, now: datetime | None = None) -> str:
    lines = [
        f"{t.status}  roll {t.roll.rsplit(':', 1)[-1]}  started {t.start:%Y-%m-%d %H:%M:%S}Z"
        + (f"  step {t.step}" if t.step else ""),
        f"  nodes: {len(t.done)} done, {len(t.in_flight)} in flight, {t.left} left (of {t.planned})"
        + (f"; estimated time left {_duration(t.eta_seconds(now))}" if t.status == "RUNNING" else ""),
    ]
    for w in t.waves:
        lines.append(f"  wave {w.index} {w.name}: {w.status}, {w.nodes} node(s)")
    for r in t.in_flight:
        since = (t.end - r.segments[-1].start).total_seconds()
        lines.append(f"    in flight: {r.label:<40} {r.current} (for {_duration(since)})")
    return "\n".join(lines)


def node_table(t: Timeline) -> list[dict[str, Any]]:
    """One row per node: when, how long, seconds per step, evictions, 429s, failovers."""
    out = []
    for r in t.rows:
        steps = r.step_seconds()
        out.append(
            {
                "node": r.node_name or "",
                "instance": r.instance_id,
                "az": r.az,
                "wave": r.wave,
                "start": r.start.isoformat(),
                "end": r.end.isoformat(),
                "total_s": round((r.end - r.start).total_seconds(), 1),
                **{f"{s}_s": round(steps.get(s, 0.0), 1) for s in STEP_ORDER},
                "evicted": r.evicted,
                "refusals_429": r.refusals,
                "failovers": sum(1 for m in r.marks if m.kind == "failover"),
                "done": r.done,
            }
        )
    return out
