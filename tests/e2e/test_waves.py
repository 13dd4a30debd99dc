"""A roll of any size: the parent execution runs each wave as a child execution
(statemachine/roll_wave.asl.json, startExecution.sync:2), linked to it, named after the roll, the
ASG and the wave; a failed wave rolls the whole roll back; ASGs on one template roll as separate
children, each under its own lock."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from eks_rolling.planning.waves import PARENT_EVENTS_PER_WAVE
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.scenarios import TAG_OPT_IN, cloudtrail_update_asg_event
from tests.e2e.conftest import Field, leftovers, states_entered

pytestmark = [pytest.mark.slow]
SECOND = "workers-b"


LOOP_STEPS = {"WaitNewNodes", "MoveRedisPods", "DrainNode", "WaitOwnersReady"}


def _planned(own: list[dict[str, Any]]) -> dict[str, Any]:
    (planned,) = [
        e
        for e in own
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "PlanRoll"
    ]
    plan: dict[str, Any] = json.loads(planned["stateExitedEventDetails"]["output"])["plan"]
    return plan


def _wave_events(own: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The parent's events of each RollWave (by child name), from its TaskScheduled parameters."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for ev in own:
        if (
            ev["type"] == "MapIterationStarted"
            and ev["mapIterationStartedEventDetails"]["name"] == "RollWaves"
        ):
            current = [ev]
            continue
        if current is None:
            continue
        current.append(ev)
        if ev["type"] == "TaskScheduled":
            name = json.loads(ev["taskScheduledEventDetails"]["parameters"])["Name"]
            out[name] = current
        if ev["type"].startswith("MapIteration") and ev["type"] != "MapIterationStarted":
            current = None
    return out


def test_a_roll_of_three_waves_succeeds_with_each_wave_a_linked_child(field: Field) -> None:
    # Given the field-report cluster (6 old nodes), waves of at most 2 nodes, and every plan
    # treated as large (its waves' batches go to S3, as a 1,000-node plan's do)
    before, ca_before = field.state(), field.autoscaler_replicas()
    old_ids = {i.instance_id for i in before.instances}
    # When the launch template changes
    with field.runner(max_nodes_per_wave="2", inline_plan_bytes="0") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        parent = result["executionArn"]
        own = runner.own_history(parent)
        children = runner.children(parent)
        child_runs = {c: (runner.describe(c), runner.own_history(c)) for c in children}
    # Then the roll succeeds, every old instance replaced, everything restored
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after = field.state()
    assert not [i for i in after.instances if i.instance_id in old_ids]
    assert leftovers(field, before, ca_before) == []
    # ... in three child executions, each SUCCEEDED, linked to the parent, named roll-asg-wNN
    roll = parent.rsplit(":", 1)[-1]
    names = [d["name"] for d, _ in child_runs.values()]
    assert names == [f"{roll}-{field.scenario.asg_name}-w0{i}" for i in (1, 2, 3)]
    for d, _ in child_runs.values():
        assert d["status"] == "SUCCEEDED"
        assert json.loads(d["input"])["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == parent
    # ... the parent's history names every wave and its child's ARN (the console's link)
    per_wave = _wave_events(own)
    assert sorted(per_wave) == sorted(names)
    for name, events in per_wave.items():
        (ok,) = [e for e in events if e["type"] == "TaskSucceeded"]
        arn = json.loads(ok["taskSucceededEventDetails"]["output"])["ExecutionArn"]
        assert arn in children and arn.endswith(name)
        # ... and grows by a constant per wave, whatever the wave did
        assert len(events) == PARENT_EVENTS_PER_WAVE, [e["type"] for e in events]
    # ... each node's steps are in its wave's own history, none in the parent's
    parent_states = {name for name, _ in states_entered(own)}
    assert "DrainNode" not in parent_states and "RollWave" in parent_states
    drained = {
        inp["node"]["instance_id"]
        for _, history in child_runs.values()
        for name, inp in states_entered(history)
        if name == "TerminateInstance"
    }
    assert drained == old_ids
    assert all(len(h) < 25_000 for _, h in child_runs.values())
    # ... and every polling loop of a wave ran under that wave's guard (its round_scale)
    scales = {w["name"]: w["round_scale"] for w in _planned(own)["waves"]}
    for d, history in child_runs.values():
        loops = [inp for name, inp in states_entered(history) if name in LOOP_STEPS]
        assert loops and {inp["round_scale"] for inp in loops} == {scales[d["name"]]}
    # ... the roll's state carried no node list: each wave's batches were in S3, and each child
    # read only its own (ReadWave, then UseStoredWave puts them where ReplaceBatches reads them)
    plan = _planned(own)
    assert [w["batches"] for w in plan["waves"]] == [[], [], []]
    # ... TaintOldNodes read them back: every old node was tainted before the first wave
    (tainted,) = [
        e
        for e in own
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "TaintOldNodes"
    ]
    assert len(json.loads(tainted["stateExitedEventDetails"]["output"])["tainted"]["tainted"]) == len(old_ids)
    assert [w["key"] for w in plan["waves"]] == [f"waves/{n}.json" for n in names]
    for _, history in child_runs.values():
        (read,) = [
            e
            for e in history
            if e["type"] == "PassStateExited" and e["stateExitedEventDetails"]["name"] == "UseStoredWave"
        ]
        ids = {
            n["instance_id"]
            for b in json.loads(read["stateExitedEventDetails"]["output"])["wave"]["batches"]
            for n in b
        }
        assert len(ids) == 2 and ids <= old_ids


def test_a_wave_that_fails_mid_roll_rolls_back_the_whole_roll(field: Field) -> None:
    # Given a roll in waves of 2 nodes, and evictions refused (403) once the first wave is done
    sb = field.env.sandbox
    before, ca_before = field.state(), field.autoscaler_replicas()
    refused: list[object] = []

    def refuse_after_first_wave(runner: LocalRunner, parent: str) -> None:
        if refused:
            return
        kids = runner.children(parent)
        if kids and runner.describe(kids[0])["status"] == "SUCCEEDED":
            refused.append(sb.faults.add(method="POST", path=r"/eviction$", status=403))

    # When the roll runs
    with field.runner(max_nodes_per_wave="2") as runner:
        parent = runner.start(field.scenario.bump_launch_template())
        result = runner.wait(parent, timeout=300, on_poll=lambda _: refuse_after_first_wave(runner, parent))
        kids = [runner.describe(c) for c in runner.children(parent)]
        own = runner.own_history(parent)
    # Then the second wave failed with the step's named error, and so did the roll
    assert refused, "the first wave never finished"
    assert [k["status"] for k in kids] == ["SUCCEEDED", "FAILED"]
    assert kids[1]["error"] == "EvictionRejectedError"
    assert result["status"] == "FAILED"
    assert result["error"] == "EvictionRejectedError", result.get("cause")
    # ... the parent ran its Rollback (the child's failure reached it as States.TaskFailed)
    entered = [name for name, _ in states_entered(own)]
    assert "Rollback" in entered and "RestoreCluster" not in entered
    failed = [e for e in own if e["type"] == "TaskFailed"]
    assert failed and failed[0]["taskFailedEventDetails"]["error"] == "States.TaskFailed"
    assert "EvictionRejectedError" in failed[0]["taskFailedEventDetails"]["cause"]
    # ... and everything is restored: processes, max size, autoscaler, taints, tags, lock
    sb.faults.clear()
    assert leftovers(field, before, ca_before) == []
    after = field.state()
    assert after.desired == before.desired


def _second_group_on_the_template(field: Field) -> None:
    """A second opted-in group with 2 nodes on the field group's launch template, both following
    $Latest, as node groups cloned from one template do."""
    env, sc = field.env, field.scenario
    asg = env.aws("autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[sc.asg_name])["AutoScalingGroups"][0]
    asg.update_auto_scaling_group(
        AutoScalingGroupName=sc.asg_name,
        LaunchTemplate={"LaunchTemplateId": sc.launch_template_id, "Version": "$Latest"},
    )
    tags = [
        {**{k: v for k, v in t.items() if k != "ResourceId"}, "ResourceId": SECOND}
        for t in group["Tags"]
        if t["Key"] != "Name"
    ]
    if not any(t["Key"] == TAG_OPT_IN for t in tags):
        tags.append(
            {"Key": TAG_OPT_IN, "Value": "true", "PropagateAtLaunch": False, "ResourceId": SECOND,
             "ResourceType": "auto-scaling-group"}
        )  # fmt: skip
    asg.create_auto_scaling_group(
        AutoScalingGroupName=SECOND,
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateId": sc.launch_template_id, "Version": "$Latest"},
        VPCZoneIdentifier=group["VPCZoneIdentifier"],
        Tags=tags,
    )
    env.sandbox.wait_for(
        lambda: (
            len(
                asg.describe_auto_scaling_groups(AutoScalingGroupNames=[SECOND])["AutoScalingGroups"][0][
                    "Instances"
                ]
            )
            == 2
            and sum(1 for n in env.sandbox.store.all("nodes") if n["metadata"]["name"]) >= 10
        ),
        timeout=30,
        what="the second group's nodes",
    )


def _create_version_event(field: Field) -> dict[str, Any]:
    ec2 = field.env.aws("ec2")
    sc = field.scenario
    ec2.create_launch_template_version(
        LaunchTemplateId=sc.launch_template_id, SourceVersion="1", LaunchTemplateData={"ImageId": sc.new_ami}
    )
    event = cloudtrail_update_asg_event(sc.asg_name, sc.launch_template_id, "2", region=field.env.region)
    event = copy.deepcopy(event)
    event["source"] = "aws.ec2"
    event["detail"]["eventSource"] = "ec2.amazonaws.com"
    event["detail"]["eventName"] = "CreateLaunchTemplateVersion"
    event["detail"]["requestParameters"] = {
        "CreateLaunchTemplateVersionRequest": {
            "LaunchTemplateId": sc.launch_template_id,
            "SourceVersion": "1",
        }
    }
    return event


def test_two_groups_on_one_template_roll_as_two_children_with_their_own_locks(field: Field) -> None:
    # Given two opted-in groups following one launch template's $Latest
    _second_group_on_the_template(field)
    asg = field.env.aws("autoscaling")
    old = {
        g["AutoScalingGroupName"]: {i["InstanceId"] for i in g["Instances"]}
        for g in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[field.scenario.asg_name, SECOND])[
            "AutoScalingGroups"
        ]
    }
    # When a new version of the template is created (CloudTrail's CreateLaunchTemplateVersion)
    with field.runner() as runner:
        result = runner.run(_create_version_event(field), timeout=300)
        parent = result["executionArn"]
        own = runner.own_history(parent)
        kids = [runner.describe(c) for c in runner.children(parent)]
    # Then both groups rolled, each in its own child execution
    assert result["status"] == "SUCCEEDED", result.get("cause")
    out = json.loads(result["output"])
    assert sorted((r["asg_name"], r["status"]) for r in out["results"]) == sorted(
        (name, "rolled") for name in old
    )
    roll = parent.rsplit(":", 1)[-1]
    assert sorted(k["name"] for k in kids) == sorted(f"{roll}-{name}-w01" for name in old)
    assert all(k["status"] == "SUCCEEDED" for k in kids)
    for k in kids:
        ctx = json.loads(k["input"])["ctx"]
        assert k["name"] == f"{roll}-{ctx['asg_name']}-w01"
    # ... each group under its own lock: one AcquireLock and one ReleaseLock per group
    for step in ("AcquireLock", "ReleaseLock"):
        assert sorted(inp["ctx"]["asg_name"] for name, inp in states_entered(own) if name == step) == sorted(
            old
        )
    assert field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Count"] == 0
    # ... and no old instance is left in either group
    now = {
        g["AutoScalingGroupName"]: {i["InstanceId"] for i in g["Instances"]}
        for g in asg.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(old))["AutoScalingGroups"]
    }
    assert all(not (now[name] & old[name]) for name in old)


def test_waves_run_together_after_one_surge_for_every_old_node(field: Field) -> None:
    # Given the field-report cluster (6 old nodes) in waves of 2, three of them allowed at once
    before, ca_before = field.state(), field.autoscaler_replicas()
    old_ids = {i.instance_id for i in before.instances}
    monitor = field.monitor()
    # When the launch template changes
    with field.runner(max_nodes_per_wave="2", wave_concurrency="3") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        parent = result["executionArn"]
        plan = _planned(runner.own_history(parent))
        child_runs = [(runner.describe(c), runner.own_history(c)) for c in runner.children(parent)]
    monitor.stop()
    # Then the roll succeeds, every old instance replaced, everything restored, no PDB broken
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert not [i for i in field.state().instances if i.instance_id in old_ids]
    assert leftovers(field, before, ca_before) == [] and monitor.violations == 0
    # ... the plan ran the three waves at once, after one surge to every old node's replacement
    assert plan["wave_concurrency"] == 3 and len(plan["waves"]) == 3
    assert plan["surge"]["peak_desired"] == before.desired + len(old_ids)
    surges = [
        json.loads(e["stateExitedEventDetails"]["output"])["surge"]["desired"]
        for _, history in child_runs
        for e in history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "SurgeCapacity"
    ]
    assert max(surges) == before.desired + len(old_ids), surges
    # ... and the three children overlapped: each started before any of them finished
    starts = [d["startDate"] for d, _ in child_runs]
    stops = [d["stopDate"] for d, _ in child_runs]
    assert len(child_runs) == 3 and max(starts) < min(stops), (starts, stops)


def test_waves_together_that_fail_roll_back_the_whole_roll(field: Field) -> None:
    # Given waves run together, and every eviction refused (403)
    sb = field.env.sandbox
    before, ca_before = field.state(), field.autoscaler_replicas()
    sb.faults.add(method="POST", path=r"/eviction$", status=403)
    # When the roll runs
    with field.runner(max_nodes_per_wave="2", wave_concurrency="3") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        own = runner.own_history(result["executionArn"])
        kids = [runner.describe(c) for c in runner.children(result["executionArn"])]
    # Then the roll failed with the step's named error and ran its Rollback, after no child kept going
    assert result["status"] == "FAILED" and result["error"] == "EvictionRejectedError", result.get("cause")
    assert "FAILED" in {k["status"] for k in kids} and "RUNNING" not in {k["status"] for k in kids}
    entered = [name for name, _ in states_entered(own)]
    assert "Rollback" in entered and "RestoreCluster" not in entered
    # ... and everything is restored, the surge for every old node given back
    sb.faults.clear()
    assert leftovers(field, before, ca_before) == []
    after = field.state()
    assert after.desired == before.desired
    assert {i.instance_id for i in after.instances} >= {i.instance_id for i in before.instances}
