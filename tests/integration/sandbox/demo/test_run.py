"""The demo's `nodes_replaced` is the old instances EC2 reports terminated, not every instance
that predates the launch template bump (which counted a roll that replaced nothing as complete),
and `eks-rolling demo`'s exit code follows every report field that can show a failure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling_sandbox.demo.run import report_failures, terminated_instances
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import field_report


def test_nodes_replaced_counts_only_old_instances_that_were_terminated() -> None:
    with SandboxEnv(redis=False) as env:
        scenario = field_report(env, redis=False)
        asg, ec2 = AsgOps(env.aws("autoscaling"), env.aws("ec2")), env.aws("ec2")
        old = [i.instance_id for i in asg.describe(scenario.asg_name).instances]
        # When the launch template is bumped but nothing is rolled
        scenario.bump_launch_template()
        after = asg.describe(scenario.asg_name)
        # Then every instance is outdated (what the old count added up) yet none was replaced
        assert all(AsgOps.is_outdated(i, after) for i in after.instances) and len(old) == 6
        assert terminated_instances(ec2, old) == []
        # When one old instance is terminated
        assert asg.terminate(old[0], decrement=False, asg_name=scenario.asg_name)
        # Then exactly that one counts
        assert terminated_instances(ec2, old) == [old[0]]


def _good_report() -> dict[str, Any]:
    return {
        "execution": {"status": "SUCCEEDED"},
        "old_instances_before": 6,
        "nodes_replaced": 6,
        "old_instances_left": 0,
        "pdb_violations": 0,
        "availability": {"errors": 0, "error_samples": []},
        "restored": {
            "cluster_autoscaler_replicas": True,
            "asg_desired": True,
            "asg_max": True,
            "processes": {"AZRebalance": True, "AlarmNotification": True, "ScheduledActions": True},
        },
        "redis": {
            "sentinel": {
                "acked_writes_lost": 0,
                "write_errors": 0,
                "stale_replicas": [],
                "quorum_ok": True,
                "master_pod": "redis-1",
            },
            "cluster": {
                "acked_writes_lost": 0,
                "write_errors": 0,
                "uncovered_slots_max": 0,
                "leftover_temp_nodes": 0,
                "node_ids_kept": True,
                "masters_in_place": True,
            },
        },
        "metrics": {
            m: {"points": 1}
            for m in (
                "NodesReplaced",
                "NodeReplacementDuration",
                "DrainDuration",
                "OwnersRecoveryTime",
                "RedisWritePause",
                "RedisClusterFailoverTime",
                "TemporaryClusterNodesAlive",
            )
        },
        "traffic": {
            "requests": 9000,
            "min_requests": 4000,
            "failed": 0,
            "failed_by_kind": {"refused": 0, "reset": 0, "5xx": 0, "timeout": 0, "other": 0},
            "baseline": {"requests": 600, "failed": 12},
        },
    }


@pytest.mark.parametrize(
    "path,bad,named",
    [
        (("execution", "status"), "FAILED", "execution.status"),
        (("nodes_replaced",), 4, "nodes_replaced: 4 of 6"),
        (("old_instances_left",), 2, "old_instances_left"),
        (("pdb_violations",), 1, "pdb_violations"),
        (("availability", "errors"), 1, "availability.errors"),
        (("restored", "cluster_autoscaler_replicas"), False, "restored.cluster_autoscaler_replicas"),
        (("restored", "asg_desired"), False, "restored.asg_desired"),
        (("restored", "asg_max"), False, "restored.asg_max"),
        (("restored", "processes", "AZRebalance"), False, "restored.processes.AZRebalance"),
        (("redis", "sentinel", "acked_writes_lost"), 3, "redis.sentinel.acked_writes_lost"),
        (("redis", "sentinel", "write_errors"), 2, "redis.sentinel.write_errors"),
        (("redis", "sentinel", "stale_replicas"), ["10.0.0.1:6379"], "redis.sentinel.stale_replicas"),
        (("redis", "sentinel", "quorum_ok"), False, "redis.sentinel.quorum_ok"),
        (("redis", "sentinel", "master_pod"), None, "redis.sentinel.master_pod"),
        (("redis", "cluster", "acked_writes_lost"), 1, "redis.cluster.acked_writes_lost"),
        (("redis", "cluster", "write_errors"), 5, "redis.cluster.write_errors"),
        (("redis", "cluster", "uncovered_slots_max"), 5461, "redis.cluster.uncovered_slots_max"),
        (("redis", "cluster", "leftover_temp_nodes"), 1, "redis.cluster.leftover_temp_nodes"),
        (("redis", "cluster", "node_ids_kept"), False, "redis.cluster.node_ids_kept"),
        (("redis", "cluster", "masters_in_place"), False, "redis.cluster.masters_in_place"),
        (("traffic", "failed"), 3, "traffic.failed"),
        (("traffic", "requests"), 3999, "traffic.requests"),
        (("traffic", "baseline", "failed"), 0, "traffic.baseline.failed"),
    ],
)
def test_every_failing_report_field_fails_the_demo(path: tuple[str, ...], bad: Any, named: str) -> None:
    _assert_only_failure(_good_report(), path, bad, named)


def test_a_metric_the_roll_did_not_write_fails_the_demo() -> None:
    report = _good_report()
    del report["metrics"]["RedisWritePause"]
    assert report_failures(report) == ["metrics.missing: ['RedisWritePause']"]
    # without Redis groups, the Redis metrics are not expected
    del report["redis"], report["metrics"]["TemporaryClusterNodesAlive"]
    del report["metrics"]["RedisClusterFailoverTime"]
    assert report_failures(report) == []


def _bad_ami_report() -> dict[str, Any]:
    report = _good_report()
    del report["redis"], report["metrics"]["TemporaryClusterNodesAlive"]
    del report["metrics"]["RedisClusterFailoverTime"], report["metrics"]["RedisWritePause"]
    report.update(
        scenario="bad-ami",
        execution={"status": "FAILED", "error": "HealthAlarmError"},
        nodes_replaced=2,
        old_instances_left=0,
        halted_by_alarm=True,
        reverted=True,
        revert={"reverted": True},
        bad_ami={
            "canary_nodes": 2,
            "old_nodes_left": 4,
            "bad_ami_nodes_left": 0,
            "other_old_nodes_touched": [],
        },
    )
    return report


@pytest.mark.parametrize(
    "path,bad,named",
    [
        (("halted_by_alarm",), False, "halted_by_alarm"),
        (("reverted",), False, "reverted"),
        (("bad_ami", "bad_ami_nodes_left"), 1, "bad_ami.bad_ami_nodes_left"),
        (("bad_ami", "other_old_nodes_touched"), ["i-1"], "bad_ami.other_old_nodes_touched"),
        (("bad_ami", "old_nodes_left"), 3, "bad_ami.old_nodes_left"),
        (("restored", "asg_desired"), False, "restored.asg_desired"),
        (("traffic", "failed"), 3, "traffic.failed"),
    ],
)
def test_the_bad_ami_demo_passes_only_when_the_alarm_halted_and_the_canary_was_reverted(
    path: tuple[str, ...], bad: Any, named: str
) -> None:
    # A FAILED execution is the expected outcome of bad-ami; every other field still counts
    _assert_only_failure(_bad_ami_report(), path, bad, named)


def _assert_only_failure(good: dict[str, Any], path: tuple[str, ...], bad: Any, named: str) -> None:
    """`good` passes; with the field at `path` set to `bad`, the one failure names it."""
    assert report_failures(good) == []
    report = copy.deepcopy(good)
    target = report
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    failures = report_failures(report)
    assert len(failures) == 1 and failures[0].startswith(named), failures
