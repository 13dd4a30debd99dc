"""When the roll cannot proceed, it stops with a named error, restores what it paused, untaints
the old nodes and releases its lock. Bad input fails in Resolve and changes nothing."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from eks_rolling.labels import LABEL_HOSTNAME, TAINT_RETIRING
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import pod_is_ready
from eks_rolling_sandbox.scenarios import NEW_AMI
from tests.e2e.conftest import Field, leftovers, record_run, states_entered, tainted_in_group
from tests.factories.fault_matrix import FaultRow

pytestmark = [pytest.mark.slow]


def _tainted(field: Field) -> list[str]:
    return tainted_in_group(field, TAINT_RETIRING)


def _assert_nothing_left_paused(field: Field, before, ca_before: int) -> None:  # type: ignore[no-untyped-def]
    after = field.state()
    assert not set(after.suspended_processes), after.suspended_processes
    assert after.max_size == before.max_size
    assert field.autoscaler_replicas() == ca_before
    assert not _tainted(field)
    assert not [k for k in after.tags if k.startswith("eks-rolling/saved/")]
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0


@pytest.mark.fault("F1")
def test_new_node_never_ready_hits_the_deadline_and_everything_is_restored(
    field: Field, fault_row: FaultRow
) -> None:
    # Given new instances whose kubelet never becomes Ready (a broken AMI)
    field.env.cloud.never_ready = lambda inst: inst.image_id == NEW_AMI
    before, ca_before = field.state(), field.autoscaler_replicas()
    monitor = field.monitor()
    # When the roll starts with a short deadline for new nodes
    with field.runner(new_nodes_timeout_s="4") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=120)
        history = runner.history(result["executionArn"])
    monitor.stop()
    record_run(fault_row, result, history, "new instances' kubelet never Ready (broken AMI)")
    fault_row.restored = not leftovers(field, before, ca_before)
    fault_row.pdb_violations = monitor.violations
    assert monitor.violations == 0, monitor.report()
    # Then it fails with the named error, naming the instance that never became Ready
    assert result["status"] == "FAILED"
    assert result["error"] == "NewNodesTimeoutError"
    assert "not Ready" in result["cause"]
    names = [n for n, _ in states_entered(history)]
    assert "Rollback" in names and "DrainNode" not in names
    # ... the Catch path restored everything: surge given back, old nodes untainted
    after = field.state()
    assert after.desired == before.desired
    assert {i.instance_id for i in after.instances if i.lifecycle_state == "InService"} == {
        i.instance_id for i in before.instances
    }
    _assert_nothing_left_paused(field, before, ca_before)


def _hold(sb: Any, nodes: list[str], on: bool) -> None:
    """A test-only NoSchedule taint on `nodes` (added or removed)."""

    def change(cur: dict[str, Any]) -> dict[str, Any]:
        taints = [t for t in cur["spec"].get("taints") or [] if t["key"] != "sandbox.test/hold"]
        cur["spec"]["taints"] = taints + (
            [{"key": "sandbox.test/hold", "effect": "NoSchedule"}] if on else []
        )
        return cur

    for n in nodes:
        sb.store.mutate("nodes", None, n, change)


@pytest.mark.fault("F2")
def test_pdb_that_never_allows_eviction_fails_naming_the_pdb_and_pod(
    field: Field, fault_row: FaultRow
) -> None:
    # Given a Deployment with one healthy and one unhealthy replica behind maxUnavailable 1: its
    # PDB allows no disruption, and the app never heals. Both pods on one old node: that node's
    # drain is what fails (spread over two nodes, the node of the unhealthy pod, which the PDB
    # lets go, could be drained first and fail waiting for the owner instead).
    sb = field.env.sandbox
    workers = sorted(
        n["metadata"]["name"]
        for n in sb.store.all("nodes")
        if (n["metadata"].get("labels") or {}).get("role") == "worker"
    )
    _hold(sb, workers[1:], True)  # only workers[0] takes new pods while ledger is created
    gate = {"readinessGates": [{"conditionType": "example.com/warm"}], "nodeSelector": {"role": "worker"}}
    sb.apply(m.deployment("ledger", "shop", 2, **gate))
    sb.apply(m.pdb("ledger", "shop", selector={"app": "ledger"}, max_unavailable=1))
    pods = sb.wait_for(
        lambda: (
            [p for p in sb.pods("shop", "app=ledger") if p["status"].get("phase") == "Running"]
            if len(sb.pods("shop", "app=ledger")) == 2
            else None
        ),
        what="ledger running",
    )
    warm = pods[0]["metadata"]["name"]
    assert {p["spec"]["nodeName"] for p in pods} == {workers[0]}
    _hold(sb, workers[1:], False)

    def warm_up(cur):  # type: ignore[no-untyped-def]
        cur["status"]["conditions"].append({"type": "example.com/warm", "status": "True"})
        return cur

    sb.store.mutate("pods", "shop", warm, warm_up)
    sb.wait_for(lambda: pod_is_ready(sb.store.get("pods", "shop", warm)), what="one ledger pod ready")
    before, ca_before = field.state(), field.autoscaler_replicas()
    # When the roll runs with a short drain deadline
    with field.runner(drain_timeout_s="6") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=180)
        history = runner.history(result["executionArn"])
    record_run(fault_row, result, history, "a PDB with one unhealthy pod that never heals")
    fault_row.restored = not leftovers(field, before, ca_before)
    # Then it fails naming the PDB and the pod it blocks, and nothing is left paused
    assert result["status"] == "FAILED"
    assert result["error"] == "DrainTimeoutError"
    assert f"pod shop/{warm} blocked by PodDisruptionBudget shop/ledger" in result["cause"]
    _assert_nothing_left_paused(field, before, ca_before)
    # ... the warm replica was never evicted (the PDB held)
    assert pod_is_ready(sb.store.get("pods", "shop", warm))
    fault_row.pdb_violations = 0


def test_plan_blockers_stop_the_roll_before_any_change(field: Field) -> None:
    # Given a PDB with no headroom at all (minAvailable equals replicas) and an unmanaged pod
    sb = field.env.sandbox
    sb.apply(m.deployment("singleton", "shop", 1, nodeSelector={"role": "worker"}))
    sb.apply(m.pdb("singleton", "shop", selector={"app": "singleton"}, min_available=1))
    sb.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "debug-shell", "namespace": "shop"},
            "spec": {"containers": [{"name": "sh", "image": "busybox"}], "nodeSelector": {"role": "worker"}},
        }
    )
    sb.wait_for(lambda: all(pod_is_ready(p) for p in sb.pods("shop")), what="shop ready")
    event = field.scenario.bump_launch_template()
    mark = sb.request_log.mark()
    before = field.state()
    # When the roll runs
    with field.runner() as runner:
        result = runner.run(event, timeout=60)
    # Then it fails in PlanRoll with every blocker named, and the cluster saw no write
    assert result["status"] == "FAILED" and result["error"] == "PlanBlockedError"
    assert "PodDisruptionBudget shop/singleton needs 1 of 1 pods healthy" in result["cause"]
    assert "pod shop/debug-shell" in result["cause"] and "no controller" in result["cause"]
    assert not sb.request_log.writes(mark)
    after = field.state()
    assert (after.desired, after.max_size, after.suspended_processes) == (
        before.desired,
        before.max_size,
        before.suspended_processes,
    )


def test_dry_run_writes_nothing_and_lists_the_blockers(field: Field) -> None:
    # Given an outdated ASG with a blocker (a pod pinned to an old node)
    sb = field.env.sandbox
    node = sorted(
        n["metadata"]["name"]
        for n in sb.store.all("nodes")
        if n["metadata"]["labels"].get("role") == "worker"
    )[0]
    sb.apply(m.deployment("pinned", "shop", 1, nodeSelector={LABEL_HOSTNAME: node}))
    sb.wait_for(
        lambda: all(pod_is_ready(p) for p in sb.pods("shop", "app=pinned")) and sb.pods("shop", "app=pinned"),
        what="pinned ready",
    )
    field.scenario.bump_launch_template()
    mark = sb.request_log.mark()
    before = field.state()
    # When an operator asks for a dry run
    with field.runner() as runner:
        result = runner.run({"asgName": field.scenario.asg_name, "dryRun": True}, timeout=60)
    # Then the plan comes back with the blocker, and nothing was written anywhere
    assert result["status"] == "SUCCEEDED"
    plan = json.loads(result["output"])["results"][0]["plan"]
    assert plan["outdated"] == 6 and plan["blocked"] is True
    assert sum(len(b) for w in plan["waves"] for b in w["batches"]) == 6
    assert [f["kind"] for f in plan["findings"] if f["severity"] == "blocker"] == ["pinned-to-node"]
    assert not sb.request_log.writes(mark)
    after = field.state()
    assert (after.desired, after.max_size, after.suspended_processes, after.tags) == (
        before.desired,
        before.max_size,
        before.suspended_processes,
        before.tags,
    )
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"asgName": "no-such-asg"}, "AsgNotFoundError"),
        ({"asgName": "eks-system"}, "AsgNotOptedInError"),
        ({"asgName": "eks-workers", "surprise": 1}, "InvalidInputError"),
        (
            {
                "source": "aws.autoscaling",
                "detail-type": "AWS API Call via CloudTrail",
                "detail": {
                    "eventName": "UpdateAutoScalingGroup",
                    "eventSource": "autoscaling.amazonaws.com",
                    "requestParameters": {"autoScalingGroupName": "eks-workers", "desiredCapacity": 9},
                },
            },
            "InvalidInputError",
        ),
    ],
    ids=["unknown-asg", "not-opted-in", "unknown-key", "capacity-only-event"],
)
def test_bad_input_fails_in_resolve_and_changes_nothing(field: Field, payload: dict, error: str) -> None:  # type: ignore[type-arg]
    mark = field.env.sandbox.request_log.mark()
    before = field.state()
    with field.runner() as runner:
        result = runner.run(payload, timeout=60)
        names = [n for n, _ in states_entered(runner.history(result["executionArn"]))]
    assert result["status"] == "FAILED" and result["error"] == error, result.get("cause")
    assert names == ["ResolveTarget", "InvalidTrigger"]
    assert not field.env.sandbox.request_log.writes(mark)
    assert field.state().tags == before.tags


@pytest.mark.fault("F10")
def test_concurrent_triggers_for_one_asg_never_run_two_rolls(field: Field, fault_row: FaultRow) -> None:
    # Given the same change announced twice (UpdateAutoScalingGroup and a manual start)
    event = field.scenario.bump_launch_template()
    monitor = field.monitor()
    with field.runner() as runner:
        arns: list[str] = []
        starters = [
            threading.Thread(target=lambda p=p: arns.append(runner.start(p)))
            for p in (event, {"asgName": field.scenario.asg_name})
        ]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        results = [runner.wait(a, timeout=240) for a in arns]
    monitor.stop()
    fault_row.pdb_violations = monitor.violations
    assert monitor.violations == 0, monitor.report()
    # Then both executions succeed, exactly one rolled and the other changed nothing
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    statuses = sorted(json.loads(r["output"])["results"][0]["status"] for r in results)
    fault_row.injected = "the same change announced twice at once (CloudTrail event and manual start)"
    fault_row.outcome = " + ".join(statuses)
    fault_row.numbers["execution_s"] = [
        round((r["stopDate"] - r["startDate"]).total_seconds(), 1) for r in results
    ]
    assert statuses in (["rolled", "skipped"], ["rolled", "up-to-date"])
    skipped = next(
        json.loads(r["output"])["results"][0]
        for r in results
        if json.loads(r["output"])["results"][0]["status"] != "rolled"
    )
    if skipped["status"] == "skipped":
        assert "RollInProgressError" in skipped["reason"]
    assert not [i for i in field.state().instances if i.lifecycle_state != "InService"]
    fault_row.restored = field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0
    assert fault_row.restored
