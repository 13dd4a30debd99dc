"""What one roll cost in Step Functions terms, counted from its execution history: polling rounds
(Wait states entered), Lambda invocations and history events, in all and per replaced node.

These are the numbers the planner's history budget is calibrated from (eks_rolling.planning.plan);
they mean something only when measured in the realistic timing profile (timing.py), where the
ratio of what a step waits for to how often it polls is the real one.

Upstream: the Step Functions GetExecutionHistory event types (WaitStateEntered,
LambdaFunctionScheduled, TaskStateEntered).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

# Wait states that start one more polling round (Wait -> Task -> Choice), by what they wait for.
NODE_POLL_WAITS = ("BackOffBeforeDrain", "PauseBeforeOwnersCheck")  # per old node: drain, owners
BATCH_POLL_WAITS = ("PauseBeforeNewNodesCheck",)  # per batch: surge nodes Ready
REDIS_POLL_WAITS = ("PauseBeforeRedisCheck",)  # per node with Redis pods


@dataclass(frozen=True)
class RollCounts:
    nodes: int  # old nodes replaced (TerminateInstance entered)
    batches: int  # SurgeCapacity entered
    history_events: int
    lambda_invocations: int
    # States entered (Task, Choice, Wait, Pass, Map and each Map iteration's states): what Step
    # Functions bills as state transitions, one per StateEntered event.
    state_transitions: int
    node_poll_rounds: int
    batch_poll_rounds: int
    redis_poll_rounds: int

    def per_node(self) -> dict[str, float]:
        n = max(self.nodes, 1)
        return {
            "history_events": round(self.history_events / n, 1),
            "lambda_invocations": round(self.lambda_invocations / n, 1),
            "state_transitions": round(self.state_transitions / n, 1),
            "node_poll_rounds": round(self.node_poll_rounds / n, 2),
            "polling_rounds": round(
                (self.node_poll_rounds + self.batch_poll_rounds + self.redis_poll_rounds) / n, 2
            ),
        }

    def report(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "batch_poll_rounds_per_batch": round(self.batch_poll_rounds / max(self.batches, 1), 2),
            "per_node": self.per_node(),
        }


def count_roll(history: list[dict[str, Any]]) -> RollCounts:
    entered = Counter(
        ev["stateEnteredEventDetails"]["name"] for ev in history if ev.get("stateEnteredEventDetails")
    )
    return RollCounts(
        nodes=entered["TerminateInstance"],
        batches=entered["SurgeCapacity"],
        history_events=len(history),
        lambda_invocations=sum(1 for ev in history if ev["type"] == "LambdaFunctionScheduled"),
        state_transitions=sum(1 for ev in history if ev["type"].endswith("StateEntered")),
        node_poll_rounds=sum(entered[s] for s in NODE_POLL_WAITS),
        batch_poll_rounds=sum(entered[s] for s in BATCH_POLL_WAITS),
        redis_poll_rounds=sum(entered[s] for s in REDIS_POLL_WAITS),
    )


# Where a wave's time goes, per batch (batches run one after another): the new nodes' boot
# (SurgeCapacity entered -> ReplaceNodes entered), the drains and owners' recovery (-> the batch's
# last ExcludeFromLoadBalancers), then the deregistration delay and termination (-> ReplaceNodes
# exited).
PHASES = ("boot", "drain", "deregister")


def phase_seconds(history: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in each phase over the batches of one execution's history (wall clock of
    the events: divide by the time factor for real seconds)."""
    totals = dict.fromkeys(PHASES, 0.0)
    surge = nodes = drained = None
    for ev in history:
        name = (ev.get("stateEnteredEventDetails") or ev.get("stateExitedEventDetails") or {}).get("name")
        t = ev["timestamp"].timestamp()
        entered = ev["type"].endswith("StateEntered")
        if entered and name == "SurgeCapacity":
            surge, nodes, drained = t, None, None
        elif entered and name == "ReplaceNodes" and surge is not None:
            nodes = t
            totals["boot"] += t - surge
        elif entered and name == "ExcludeFromLoadBalancers" and nodes is not None:
            drained = t
        elif not entered and name == "ReplaceNodes" and nodes is not None:
            totals["drain"] += (drained or t) - nodes
            totals["deregister"] += t - (drained or t)
            surge = nodes = drained = None
    return {k: round(v, 2) for k, v in totals.items()}
