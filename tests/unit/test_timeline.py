"""eks_rolling.timeline: progress and per-node steps from hand-built history events (the shapes
GetExecutionHistory returns), for what a sandbox roll rarely shows: a wave not started yet, a
node in flight, a Redis failover and a Sentinel switchover, the child ARNs from RollWave."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from eks_rolling.timeline import build_timeline, render_status, wave_executions

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:eks-rolling-wave"


def _node(i: int) -> dict[str, Any]:
    return {
        "instance_id": f"i-{i}",
        "node_name": f"ip-10-0-1-{i}.ec2.internal",
        "az": "us-east-1a",
        "pods": 1,
    }


def _entered(s: float, name: str, i: int, **doc: Any) -> dict[str, Any]:
    return {
        "timestamp": T0 + timedelta(seconds=s),
        "type": "TaskStateEntered",
        "stateEnteredEventDetails": {"name": name, "input": json.dumps({"node": _node(i), **doc})},
    }


def _exited(s: float, name: str, i: int, **doc: Any) -> dict[str, Any]:
    return {
        "timestamp": T0 + timedelta(seconds=s),
        "type": "TaskStateExited",
        "stateExitedEventDetails": {"name": name, "output": json.dumps({"node": _node(i), **doc})},
    }


PARENT = [
    {"timestamp": T0, "type": "ExecutionStarted"},
    {
        "timestamp": T0 + timedelta(seconds=1),
        "type": "TaskStateExited",
        "stateExitedEventDetails": {
            "name": "PlanRoll",
            "output": json.dumps(
                {
                    "plan": {
                        "waves": [
                            {"index": 1, "name": "r-w01", "nodes": 2},
                            {"index": 2, "name": "r-w02", "nodes": 2},
                        ]
                    }
                }
            ),
        },
    },
    {
        "timestamp": T0 + timedelta(seconds=2),
        "type": "TaskStateEntered",
        "stateEnteredEventDetails": {"name": "RollWave", "input": "{}"},
    },
    {
        "timestamp": T0 + timedelta(seconds=2),
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {
            "resourceType": "states",
            "resource": "startExecution.sync:2",
            "parameters": json.dumps({"StateMachineArn": MACHINE, "Name": "r-w01", "Input": {}}),
        },
    },
]
CLUSTER_MOVE = {"pod": "redis-cluster-a-0", "kind": "cluster", "data": {"failover_at": 1.0}}
SENTINEL_MOVE = {"pod": "redis-1", "kind": "sentinel", "data": {"switchovers": [{"paused_ms": 80}]}}
WAVE = [
    _entered(10, "MoveRedisPods", 1),
    _exited(11, "MoveRedisPods", 1, redis={"moves": [CLUSTER_MOVE]}),
    _entered(11, "PauseBeforeRedisCheck", 1),
    _entered(12, "MoveRedisPods", 1),
    _exited(13, "MoveRedisPods", 1, redis={"moves": [CLUSTER_MOVE, SENTINEL_MOVE]}),
    _entered(13, "DrainNode", 1),
    _exited(14, "DrainNode", 1, drain={"evicted": [{}], "throttled": 1}),
    _entered(14, "BackOffBeforeDrain", 1),
    _entered(16, "DrainNode", 1),
    _exited(17, "DrainNode", 1, drain={"evicted": [{}, {}], "throttled": 0}),
    _entered(17, "TerminateInstance", 1),
    _entered(20, "NodeReplaced", 1),
    _entered(10, "MoveRedisPods", 2),
    _entered(12, "DrainNode", 2),
]


def test_a_running_roll_shows_done_in_flight_left_and_the_time_left() -> None:
    now = T0 + timedelta(seconds=30)
    t = build_timeline(
        "arn:...:execution:eks-rolling:r", "RUNNING", PARENT, [("r-w01", "RUNNING", WAVE)], now=now
    )
    assert (len(t.done), len(t.in_flight), t.left, t.planned) == (1, 1, 2, 4)
    assert [(w.name, w.status, w.nodes) for w in t.waves] == [
        ("r-w01", "RUNNING", 2),
        ("r-w02", "PENDING", 2),
    ]
    (flying,) = t.in_flight
    assert flying.current == "DrainNode" and flying.end == now  # in its step until now
    # 1 node in the 20 s since the first node started: 3 more take 60 s
    assert t.eta_seconds(now) == 60.0
    text = render_status(t, now)
    assert "1 done, 1 in flight, 2 left (of 4); estimated time left 1m00s" in text
    assert text.splitlines()[0].endswith("step RollWave")  # the roll's own latest step
    assert "wave 2 r-w02: PENDING, 2 node(s)" in text and "in flight: ip-10-0-1-2 i-2" in text


def test_a_nodes_steps_merge_repeats_and_carry_evictions_429s_and_failovers() -> None:
    t = build_timeline("r", "RUNNING", PARENT, [("r-w01", "RUNNING", WAVE)])
    row = next(r for r in t.rows if r.instance_id == "i-1")
    assert [s.state for s in row.segments] == [
        "MoveRedisPods",
        "PauseBeforeRedisCheck",
        "MoveRedisPods",
        "DrainNode",
        "BackOffBeforeDrain",
        "DrainNode",
        "TerminateInstance",
        "NodeReplaced",
    ]
    assert row.step_seconds() == {"redis": 3.0, "drain": 4.0, "terminate": 3.0, "replaced": 0.0}
    assert (row.evicted, row.refusals) == (2, 1)
    marks = [(m.kind, m.label) for m in row.marks]
    # each failover once, though every later round's output still shows it
    assert marks.count(("failover", "redis-cluster-a-0 failover")) == 1
    assert ("failover", "redis-1 switchover 1: writes held 80 ms") in marks
    assert [m.label for m in row.marks if m.kind == "evicted"] == ["1 evicted", "1 evicted"]


def test_before_any_node_the_time_left_is_unknown_and_a_finished_roll_has_none() -> None:
    empty = build_timeline("r", "RUNNING", PARENT, [])
    assert empty.eta_seconds() is None and "unknown until the first node is replaced" in render_status(empty)
    assert build_timeline("r", "SUCCEEDED", PARENT, [("r-w01", "SUCCEEDED", WAVE)]).eta_seconds() == 0.0


def test_wave_executions_come_from_the_rollwave_tasks_parameters() -> None:
    assert wave_executions(PARENT) == [
        "arn:aws:states:us-east-1:123456789012:execution:eks-rolling-wave:r-w01"
    ]


def test_hook_steps_are_a_nodes_hooks_time() -> None:
    wave = [
        _entered(10, "MoveRedisPods", 1),
        _entered(11, "PreDrainHooks", 1),
        _entered(13, "DrainNode", 1),
        _entered(15, "TerminateInstance", 1),
        _entered(16, "PostReplaceHooks", 1),
        _entered(19, "NodeReplaced", 1),
    ]
    t = build_timeline("r", "RUNNING", PARENT, [("r-w01", "RUNNING", wave)])
    row = next(r for r in t.rows if r.instance_id == "i-1")
    assert row.step_seconds() == {"redis": 1.0, "hooks": 5.0, "drain": 2.0, "terminate": 1.0, "replaced": 0.0}
