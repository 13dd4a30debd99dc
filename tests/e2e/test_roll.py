"""The product, end to end: an ASG's launch template changes and every old node is replaced
through the real state machine, with no PDB violated and nothing left paused."""

from __future__ import annotations

import json

import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling.labels import EXCLUDE_FROM_EXTERNAL_LB
from eks_rolling.planning.plan import estimate_history_events
from eks_rolling.settings import Settings
from tests.e2e.conftest import Field, states_entered

pytestmark = [pytest.mark.slow]
TAINT = Settings().taint_key


def test_launch_template_change_replaces_every_old_node_with_zero_disruption(field: Field) -> None:
    # Given the field-report cluster: 6 old nodes over 2 AZs, Deployments behind PDBs, shop/api
    # with 2 of its 3 pods on one node, cluster-autoscaler running
    before = field.state()
    old_ids = {i.instance_id for i in before.instances}
    old_nodes = {
        n["metadata"]["name"]
        for n in field.env.sandbox.store.all("nodes")
        if n["spec"]["providerID"].rsplit("/", 1)[-1] in old_ids
    }
    assert len(old_ids) == 6 and {i.az for i in before.instances} == set(field.scenario.azs)
    crowded = [p["spec"]["nodeName"] for p in field.env.sandbox.pods("shop", "app=api")]
    assert max(crowded.count(n) for n in crowded) == 2
    ca_before = field.autoscaler_replicas()
    monitor = field.monitor()
    log_mark = field.env.sandbox.request_log.mark()

    # When the operator moves the ASG to a new launch template version and CloudTrail's event
    # starts the state machine
    with field.runner() as runner:
        event = field.scenario.bump_launch_template()
        result = runner.run(event, timeout=240)
        history = runner.history(result["executionArn"])
        invocations = list(runner.stats.invocations)
    monitor.stop()

    # Then it succeeds and every old instance was terminated through the ASG API
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after = field.state()
    assert not [i for i in after.instances if i.instance_id in old_ids]
    assert not [i for i in after.instances if AsgOps.is_outdated(i, after)]
    terminated = {
        json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"])["instance_id"]
        for ev in history
        if ev["type"] == "LambdaFunctionSucceeded"
        and '"terminated": true' in ev["lambdaFunctionSucceededEventDetails"]["output"]
    }
    assert terminated == old_ids
    ec2 = field.env.aws("ec2").describe_instances(InstanceIds=sorted(old_ids))
    assert {i["State"]["Name"] for r in ec2["Reservations"] for i in r["Instances"]} == {"terminated"}
    # ... new nodes are in both AZs and Ready
    assert {i.az for i in after.instances} == set(field.scenario.azs)
    # ... desired, max, processes and cluster-autoscaler are back to their original values
    assert (after.desired, after.max_size) == (before.desired, before.max_size)
    assert not set(after.suspended_processes)
    assert field.autoscaler_replicas() == ca_before
    assert not [k for k in after.tags if k.startswith("eks-rolling/saved/")]
    # ... no Deployment ever went below its PDB minimum, and shop/api never lost 2 pods at once
    assert monitor.violations == 0, [a.violations for a in monitor.tracked.values()]
    api = monitor.tracked[("Deployment", "shop", "api")]
    assert api.min_ready >= 2 and api.per_node_max_lost <= 1
    # ... the custom taint was used, never cordon, and nodes were excluded from LBs before going
    node_patches = [
        e
        for e in field.env.sandbox.request_log.entries(log_mark)
        if e.method == "PATCH" and e.path.startswith("/api/v1/nodes/")
    ]
    assert not [e for e in node_patches if "unschedulable" in json.dumps(e.body)]
    assert any(TAINT in json.dumps(e.body) for e in node_patches)
    assert {
        e.path.rsplit("/", 1)[-1] for e in node_patches if EXCLUDE_FROM_EXTERNAL_LB in json.dumps(e.body)
    } == old_nodes
    # ... evictions went through the Eviction API only (no pod DELETE by the tool)
    assert not [
        e
        for e in field.env.sandbox.request_log.entries(log_mark)
        if e.method == "DELETE" and "/pods/" in e.path
    ]
    # ... and the execution history shows each old node's actions
    entered = states_entered(history)
    for node in old_nodes:
        steps = [name for name, inp in entered if (inp.get("node") or {}).get("node_name") == node]
        assert {"DrainNode", "WaitOwnersReady", "ExcludeFromLoadBalancers", "TerminateInstance"} <= set(
            steps
        ), (node, steps)
    # ... and with no hooks set, the hook steps were skipped by their Choices: no invocation
    assert not {"PreDrainHooks", "PostReplaceHooks"} & {name for name, _ in entered}
    # ... and the lock was released
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0
    # The planner's history-event estimate is an upper bound of what was written.
    assert len(history) <= estimate_history_events(6, 3)
    assert not [i for i in invocations if i.error]


def test_a_second_identical_trigger_after_the_roll_changes_nothing(field: Field) -> None:
    # Given a finished roll
    with field.runner() as runner:
        event = field.scenario.bump_launch_template()
        assert runner.run(event, timeout=240)["status"] == "SUCCEEDED"
        mark = field.env.sandbox.request_log.mark()
        before = field.state()
        # When the same event is delivered again (EventBridge is at-least-once)
        again = runner.run(event, timeout=60)
    # Then the execution succeeds as up to date and nothing was written to the cluster
    assert again["status"] == "SUCCEEDED"
    out = json.loads(again["output"])
    assert [r["status"] for r in out["results"]] == ["up-to-date"]
    assert not field.env.sandbox.request_log.writes(mark)
    after = field.state()
    assert (after.desired, after.max_size, after.suspended_processes) == (
        before.desired,
        before.max_size,
        before.suspended_processes,
    )
