"""The canary wave and the health gate through the real state machines on the sandbox: a roll whose
alarm stays OK bakes after every wave and completes; a bad AMI (scenario bad-ami) fires the alarm,
the roll halts after the canary wave with HealthAlarmError, the ASG points back at the previous
launch template version, the canary's new nodes are replaced by old-template ones, and no other
old node was touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling.planning.gate import bake_rounds
from eks_rolling.planning.waves import BAKE_EVENTS, BAKE_EVENTS_PER_ROUND, PARENT_EVENTS_PER_WAVE
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import BAD_AMI, BAD_AMI_ALARM, OLD_AMI, BadAmiAlarm, bad_ami
from tests.e2e.conftest import Field, leftovers, states_entered
from tests.e2e.test_gate import gate_answers, iteration_events

pytestmark = [pytest.mark.slow]
EVENTS_PER_TAINT_REST = 5  # TaintRemainingNodes: entered, scheduled, started, succeeded, exited


def step_output(own: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in own
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == state
    ]


def node_steps(history: list[dict[str, Any]], step: str) -> set[str]:
    return {inp["node"]["instance_id"] for name, inp in states_entered(history) if name == step}


def test_a_roll_whose_alarm_stays_ok_bakes_after_each_wave_and_completes(field: Field) -> None:
    # Given a health alarm that is OK, and 6 old nodes over 2 zones
    BadAmiAlarm(field.env).start().stop()  # creates the alarm, OK; no watcher: it stays OK
    before, ca_before = field.state(), field.autoscaler_replicas()
    old = {i.instance_id: i.az for i in before.instances}
    bake, poll = 120, 50
    # When the launch template changes, with the alarm as the health gate
    with field.runner(
        health_alarms=BAD_AMI_ALARM, health_bake_s=str(bake), health_poll_s=str(poll)
    ) as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        arn = result["executionArn"]
        own = runner.own_history(arn)
        children = runner.children(arn)
    # Then the roll succeeds, every old node replaced, everything restored
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert not set(old) & {i.instance_id for i in field.state().instances}
    assert leftovers(field, before, ca_before) == []
    # ... the plan's first wave is the canary: one old node per zone, alone
    (plan,) = [o["plan"] for o in step_output(own, "PlanRoll")]
    assert plan["health_alarms"] == [BAD_AMI_ALARM] and plan["health_bake_s"] == bake
    canary, *rest = plan["waves"]
    canary_ids = [n["instance_id"] for b in canary["batches"] for n in b]
    assert canary["canary"] and sorted(old[i] for i in canary_ids) == sorted(set(old.values()))
    assert rest and rest[0]["taint_rest"] and not any(w["canary"] for w in rest)
    assert len(children) == len(plan["waves"])
    # ... only the canary's nodes were tainted before it baked; the rest after
    (first,) = [o["tainted"] for o in step_output(own, "TaintOldNodes")]
    (later,) = [o["tainted"]["tainted"] for o in step_output(own, "TaintRemainingNodes")]
    assert sorted(first["tainted"]) == sorted(n["node_name"] for b in canary["batches"] for n in b)
    assert sorted(first["tainted"] + later) == sorted(
        n["node_name"] for w in plan["waves"] for b in w["batches"] for n in b
    )
    # ... each wave baked: the gate waited (bounded) with the alarm OK, then said healthy
    iterations = iteration_events(own)
    assert len(iterations) == len(plan["waves"])
    for i, events in enumerate(iterations):
        answers = [g for _, g in gate_answers(events)]
        baking = [g for g in answers if g["reason"] == "baking"]
        assert answers[-1]["reason"] == "healthy", answers
        # Waits of at most poll_s, never past the bake: exactly bake_rounds of them
        assert [g["wait_s"] for g in baking] == [50, 50, 20]
        assert len(baking) == bake_rounds(bake, poll) and answers[-1]["baked_s"] == bake
        assert {g["bake_since"] for g in baking + answers[-1:]} == {baking[0]["bake_since"]}
        # ... and the parent's history grows by the bake's bounded events only
        waits_before = sum(1 for g in answers if g["action"] == "wait" and g["reason"] != "baking")
        assert len(events) == (
            PARENT_EVENTS_PER_WAVE
            + 9 * waits_before
            + BAKE_EVENTS
            + BAKE_EVENTS_PER_ROUND * len(baking)
            + (EVENTS_PER_TAINT_REST if i == 1 else 0)
        ), [e["type"] for e in events]


@pytest.fixture
def bad() -> Iterator[Field]:
    with SandboxEnv() as env:
        scenario = bad_ami(env, redis=False)
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2")))


def test_a_bad_ami_halts_the_roll_after_the_canary_and_reverts_it(bad: Field) -> None:
    # Given the bad-ami scenario: the shop fails on nodes of the new AMI, and its alarm says so
    field = bad
    before, ca_before = field.state(), field.autoscaler_replicas()
    old = {i.instance_id: i.az for i in before.instances}
    old_version = before.target_version
    settings = {
        "health_alarms": BAD_AMI_ALARM,
        "health_bake_s": "120",
        "health_poll_s": "30",
        "revert_on_alarm": "true",
    }
    # When the launch template changes to the bad AMI
    with BadAmiAlarm(field.env) as alarm, field.runner(**settings) as runner:
        result = runner.run(field.scenario.bump_launch_template(image_id=BAD_AMI), timeout=400)
        arn = result["executionArn"]
        own = runner.own_history(arn)
        children = {
            runner.describe(c)["name"]: (runner.describe(c), runner.own_history(c))
            for c in runner.children(arn)
        }
        field.env.sandbox.wait_for(lambda: alarm.state == "OK", timeout=20, what="alarm OK again")
    # Then the roll fails with HealthAlarmError naming the alarm
    assert result["status"] == "FAILED"
    assert result["error"] == "HealthAlarmError", result.get("cause")
    assert BAD_AMI_ALARM in result["cause"]
    # ... after its canary wave only: one old node per zone replaced, no second wave started
    (plan,) = [o["plan"] for o in step_output(own, "PlanRoll")]
    canary_ids = {n["instance_id"] for b in plan["waves"][0]["batches"] for n in b}
    assert sorted(old[i] for i in canary_ids) == sorted(set(old.values()))
    roll = arn.rsplit(":", 1)[-1]
    waves = sorted(n for n in children if not n.startswith(f"{roll}-rv-"))
    reverts = sorted(n for n in children if n.startswith(f"{roll}-rv-"))
    assert waves == [f"{roll}-{field.scenario.asg_name}-w01"] and reverts
    assert all(d["status"] == "SUCCEEDED" for d, _ in children.values())
    assert alarm.changes and alarm.changes[0][1] == "ALARM"
    # ... the ASG points back at the previous version
    after = field.state()
    assert after.target_version == old_version
    (revert,) = [o["revert"] for o in step_output(own, "RevertTarget")]
    assert revert["reverted"] and revert["version"] == old_version
    # ... the canary's new nodes were replaced by old-template ones: no bad-AMI instance is left,
    # and the group is back at its size
    ec2 = field.env.aws("ec2")
    images = {
        i["InstanceId"]: i["ImageId"]
        for r in ec2.describe_instances(InstanceIds=[i.instance_id for i in after.instances])["Reservations"]
        for i in r["Instances"]
    }
    assert set(images.values()) == {OLD_AMI}, images
    assert len(after.instances) == len(before.instances) and after.desired == before.desired
    # ... no other old node was touched: all still in service, never tainted, drained or terminated
    others = set(old) - canary_ids
    assert others <= {i.instance_id for i in after.instances if i.lifecycle_state == "InService"}
    (tainted,) = [o["tainted"]["tainted"] for o in step_output(own, "TaintOldNodes")]
    assert sorted(tainted) == sorted(n["node_name"] for b in plan["waves"][0]["batches"] for n in b)
    assert "TaintRemainingNodes" not in {name for name, _ in states_entered(own)}
    for step in ("DrainNode", "TerminateInstance"):
        touched = set().union(*(node_steps(h, step) for _, h in children.values()))
        assert not touched & others, step
    assert {n for _, h in children.values() for n in node_steps(h, "TerminateInstance")} >= canary_ids
    # ... and everything restored
    assert leftovers(field, before, ca_before) == []
