"""bench/roll_scale.py's own checks, each shown reporting a failure: `leftovers` (the row's
"everything restored", eks_rolling_sandbox.checks, shared with the e2e tests) on a sandbox left
changed, and `max_state_bytes` on an oversized state, with where it was (`max_state_at`)."""

from __future__ import annotations

import json
from typing import Any

from bench.roll_scale import largest_state, stateless
from eks_rolling.aws.asg import AsgOps
from eks_rolling.aws.lock import KEY_ATTR
from eks_rolling.labels import TAINT_RETIRING
from eks_rolling_sandbox.checks import leftovers
from eks_rolling_sandbox.env import SandboxEnv


def test_leftovers_names_each_thing_a_roll_left_changed() -> None:
    with SandboxEnv() as env:
        sc = stateless(env, 2, 1)
        asg = env.aws("autoscaling")
        before = AsgOps(asg, env.aws("ec2")).describe(sc.asg_name)
        # A scenario just set up has nothing left over
        assert leftovers(env, sc.asg_name, before, desired=True) == []
        # Control: a suspended process, a raised MaxSize, a tainted node and a held lock are each named
        asg.suspend_processes(AutoScalingGroupName=sc.asg_name, ScalingProcesses=["AZRebalance"])
        asg.update_auto_scaling_group(AutoScalingGroupName=sc.asg_name, MaxSize=before.max_size + 5)
        node = env.sandbox.store.list("nodes")[0][0]["metadata"]["name"]
        env.sandbox.store.mutate("nodes", None, node, _tainted)
        env.aws("dynamodb").put_item(TableName=env.lock_table, Item={KEY_ATTR: {"S": sc.asg_name}})
        left = leftovers(env, sc.asg_name, before, desired=True)
        assert left == [
            "suspended AZRebalance",
            f"max size {before.max_size + 5} (was {before.max_size})",
            f"node {node} tainted",
            "lock held",
        ]


def _tainted(cur: dict[str, Any]) -> dict[str, Any]:
    cur["spec"]["taints"] = [{"key": TAINT_RETIRING, "value": "run-1", "effect": "NoSchedule"}]
    return cur


def test_max_state_bytes_reports_a_state_over_64_kib() -> None:
    big = json.dumps({"plan": "x" * 70_000})
    history = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Rollback", "input": big}},
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "PlanRoll", "output": "{}"}},
    ]
    parent, child = "arn:aws:states:r:1:execution:m:roll", "arn:aws:states:r:1:execution:w:roll-workers-w02"
    size, where = largest_state({parent: history[1:], child: history})
    assert size > 64 * 1024 and where == "roll-workers-w02 Rollback TaskStateEntered"
    assert largest_state({parent: history[1:]}) == (2, "roll PlanRoll TaskStateExited")
