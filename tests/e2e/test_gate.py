"""CheckGate through the real state machine on the sandbox: a roll outside its maintenance window
waits and then proceeds in it (and a later wave waits for the next window); a paused roll finishes
its wave, waits and resumes where it stopped; an abort mid-drain stops before the next wave and
Rollback restores everything."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from eks_rolling import cli
from eks_rolling.aws.asg import AsgOps
from eks_rolling.labels import TAG_CONTROL, TAG_MAINTENANCE_WINDOWS
from eks_rolling.planning.waves import PARENT_EVENTS_PER_WAVE
from eks_rolling.services import deps
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.timing import StepClock
from tests.e2e.conftest import Field, leftovers, states_entered

pytestmark = [pytest.mark.slow]
EVENTS_PER_GATE_WAIT = 9  # WaitForGate (2), CheckGate again (5), GateSays (2)


def eventually(what: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def inbox(env: SandboxEnv) -> SimpleNamespace:
    """An SNS topic delivering to a queue, to read the roll's notifications back."""
    sns, sqs = env.aws("sns"), env.aws("sqs")
    topic = sns.create_topic(Name="eks-rolling-gate")["TopicArn"]
    url = sqs.create_queue(QueueName="gate-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )

    def kinds() -> list[str]:
        out = []
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for m in msgs:
                out.append(json.loads(m["Body"])["kind"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out

    return SimpleNamespace(topic=topic, kinds=kinds)


def gate_answers(
    own: list[dict[str, Any]], state: str = "CheckGate"
) -> list[tuple[datetime, dict[str, Any]]]:
    """Each answer of the gate `state` (CheckGate, AwaitWindow) in the parent's history, with when."""
    return [
        (e["timestamp"], json.loads(e["stateExitedEventDetails"]["output"])["gate"])
        for e in own
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == state
    ]


def entered_at(own: list[dict[str, Any]], state: str) -> datetime:
    (t,) = [
        e["timestamp"]
        for e in own
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
    ]
    return t  # type: ignore[no-any-return]


def iteration_events(own: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The parent's events of each RollWaves iteration (its gate checks and its wave)."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] | None = None
    for ev in own:
        if (
            ev["type"] == "MapIterationStarted"
            and ev["mapIterationStartedEventDetails"]["name"] == "RollWaves"
        ):
            current = []
            out.append(current)
        if current is not None:
            current.append(ev)
            if ev["type"].startswith("MapIteration") and ev["type"] != "MapIterationStarted":
                current = None
    return out


def set_tag(field: Field, key: str, value: str) -> None:
    field.env.aws("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": field.scenario.asg_name,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": False,
            }
        ]
    )


def node_steps(history: list[dict[str, Any]], step: str) -> Counter[str]:
    return Counter(inp["node"]["instance_id"] for name, inp in states_entered(history) if name == step)


# --- maintenance windows (the realistic profile: the steps' clock runs with the scaled Waits) ---
FACTOR = 0.05


@pytest.fixture
def realistic() -> Iterator[Field]:
    with SandboxEnv(timing_profile="realistic", time_factor=FACTOR) as env:
        scenario = field_report(env, redis=False)
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2")))


def test_a_roll_outside_its_window_waits_then_proceeds_in_it_and_a_later_wave_waits_again(
    realistic: Field,
) -> None:
    # Given two old nodes to roll in batches of one, and an ASG tag with two windows: A opens 5 to
    # 6 minutes after the trigger (for two minutes), B 15 minutes after A (the steps' clock; the
    # steps before AwaitWindow take about 100 s of it, more on a loaded machine)
    field = realistic
    before, ca_before = field.state(), field.autoscaler_replicas()
    two = sorted(i.instance_id for i in before.instances)[:2]
    mail = inbox(field.env)
    settings = {
        "batch_size": "1",
        "instance_ids": json.dumps(two),
        "notify_topic_arn": mail.topic,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    with LocalRunner(field.env, settings=settings) as runner:
        clock = deps.step_clock
        assert isinstance(clock, StepClock)
        now = clock()
        a = (now + timedelta(minutes=6)).replace(second=0, microsecond=0)
        b = a + timedelta(minutes=15)
        set_tag(field, TAG_MAINTENANCE_WINDOWS, f"* {a:%H:%M}/2m UTC; * {b:%H:%M}/1h UTC")
        # When the launch template changes now, outside both windows
        result = runner.run(field.scenario.bump_launch_template(), timeout=400)
        arn = result["executionArn"]
        own, children = runner.own_history(arn), runner.children(arn)
        starts = [runner.describe(c)["startDate"] for c in children]

    def step_time(real: datetime) -> datetime:
        return clock.start + (real.astimezone(UTC) - clock.start) / FACTOR

    # Then the roll succeeds, both nodes replaced, everything restored
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert not {i.instance_id for i in field.state().instances} & set(two)
    assert leftovers(field, before, ca_before) == []
    # ... the plan shows the windows, and with windows each batch is a wave of its own
    (plan,) = [
        json.loads(e["stateExitedEventDetails"]["output"])["plan"]
        for e in own
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "PlanRoll"
    ]
    assert plan["maintenance_windows_from"] == f"tag {TAG_MAINTENANCE_WINDOWS}"
    assert [len(w["batches"]) for w in plan["waves"]] == [1, 1]
    # ... the roll waited for A before pausing or tainting anything (a visible Wait in the
    # history), then started: cluster-autoscaler was paused only inside A
    before_start = [g for _, g in gate_answers(own, "AwaitWindow")]
    assert before_start[0]["reason"] == "window" and before_start[0]["opens_at"] == a.isoformat(), (
        before_start,
        a,
        [g for _, g in gate_answers(own)],
        now,
    )
    assert before_start[-1]["action"] == "go" and {g["action"] for g in before_start[:-1]} == {"wait"}
    assert "WaitForWindow" in {name for name, _ in states_entered(own)}
    assert a <= step_time(entered_at(own, "PauseAutoscaler")) < a + timedelta(minutes=2)
    # ... the first wave started inside A
    assert len(children) == 2
    assert a <= step_time(starts[0]) < a + timedelta(minutes=2)
    # ... the second wave found A closed and waited for B: no wave started outside a window
    answers = [g for _, g in gate_answers(own)]
    assert answers[0]["action"] == "go"
    second = [g for g in answers if g.get("opens_at") == b.isoformat()]
    assert second and second[0]["reason"] == "window"
    assert "WaitForGate" in {name for name, _ in states_entered(own)}
    assert step_time(starts[1]) >= b
    assert [g["reason"] for g in answers if g["action"] == "go"] == ["open", "open"]
    # ... and people were told each time the roll started waiting
    assert Counter(mail.kinds())["waiting"] == 2


# --- pause / resume / abort (fast profile) --------------------------------------------------------


def test_a_paused_roll_finishes_its_wave_waits_and_resumes_where_it_stopped(field: Field) -> None:
    # Given 6 old nodes rolled in 3 waves of 2
    before, ca_before = field.state(), field.autoscaler_replicas()
    old_ids = {i.instance_id for i in before.instances}
    mail = inbox(field.env)
    with field.runner(max_nodes_per_wave="2", gate_poll_s="10", notify_topic_arn=mail.topic) as runner:
        arn = runner.start(field.scenario.bump_launch_template())
        # When an operator pauses the roll (by its execution) while its first wave runs
        first = eventually(lambda: runner.children(arn))[0]
        assert cli.main(["pause", arn, "--by", "alice"]) == 0
        # Then the first wave finishes and the roll waits, starting no other wave
        eventually(lambda: any(g["reason"] == "paused" for _, g in gate_answers(runner.own_history(arn))))
        time.sleep(3)  # several checks (gate_poll_s 10 s, scaled)
        assert runner.children(arn) == [first]
        assert runner.describe(first)["status"] == "SUCCEEDED"
        # When another operator resumes it (by the group's name)
        assert cli.main(["resume", field.scenario.asg_name, "--by", "bob"]) == 0
        result = runner.wait(arn, timeout=240)
        own, children = runner.own_history(arn), runner.children(arn)
        waves = [(runner.describe(c), runner.own_history(c)) for c in children]
    # Then the roll completes, every old node replaced, everything restored
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert not old_ids & {i.instance_id for i in field.state().instances}
    assert leftovers(field, before, ca_before) == []
    # ... no node was handled twice: three waves, each node drained in one of them, and its
    # one-shot steps ran once
    assert len(waves) == 3 and all(d["status"] == "SUCCEEDED" for d, _ in waves)
    drained = Counter(i for _, h in waves for i in set(node_steps(h, "DrainNode")))
    assert drained == Counter(dict.fromkeys(old_ids, 1))
    for step in ("ExcludeFromLoadBalancers", "TerminateInstance"):
        assert sum((node_steps(h, step) for _, h in waves), Counter()) == Counter(dict.fromkeys(old_ids, 1))
    # ... the history says who paused, that it waited, and who resumed
    answers = gate_answers(own)
    paused = [g for _, g in answers if g["reason"] == "paused"]
    assert len(paused) >= 2 and {g["paused_by"] for g in paused} == {"alice"}
    assert len({g["paused_since"] for g in paused}) == 1
    (resumed,) = [g for _, g in answers if g["reason"] == "resumed"]
    assert "bob" in resumed["message"]
    # ... the pause sat between the first wave's end and the second's start
    pause_times = [t for t, g in answers if g["reason"] == "paused"]
    assert waves[0][0]["stopDate"] <= min(pause_times) and max(pause_times) <= waves[1][0]["startDate"]
    # ... each check that said wait cost the parent 9 events (Wait, Task, Choice) over the wave's 15
    iterations = iteration_events(own)
    assert [len(i) for i in iterations] == [
        PARENT_EVENTS_PER_WAVE
        + EVENTS_PER_GATE_WAIT * sum(1 for _, g in gate_answers(i) if g["action"] == "wait")
        for i in iterations
    ]
    assert len(iterations[1]) > PARENT_EVENTS_PER_WAVE
    # ... and people were told
    kinds = Counter(mail.kinds())
    assert kinds["paused"] == 1 and kinds["resumed"] == 1


def test_an_abort_mid_drain_lets_the_wave_finish_then_rolls_back_everything(
    field: Field, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 6 old nodes rolled in 3 waves of 2
    before, ca_before = field.state(), field.autoscaler_replicas()
    with field.runner(max_nodes_per_wave="2") as runner:
        arn = runner.start(field.scenario.bump_launch_template())

        def draining() -> bool:
            children = runner.children(arn)
            return bool(children) and "DrainNode" in {
                n for n, _ in states_entered(runner.own_history(children[0]))
            }

        # When an operator sets the abort tag in the console while the first wave drains
        eventually(draining)
        set_tag(field, TAG_CONTROL, "abort")
        result = runner.wait(arn, timeout=240)
        own, children = runner.own_history(arn), runner.children(arn)
        first = runner.describe(children[0])
        first_history = runner.own_history(children[0])
        # ... and once it has ended, a control for it is refused, writing nothing
        assert cli.main(["resume", field.scenario.asg_name]) == 1
        assert "no roll of ASG" in capsys.readouterr().err
    # Then the roll fails with the named error, naming the tag
    assert result["status"] == "FAILED"
    assert result["error"] == "RollAbortedError"
    assert TAG_CONTROL in result["cause"]
    # ... the draining wave finished its nodes, and no further wave started
    assert first["status"] == "SUCCEEDED" and len(children) == 1
    replaced = set(node_steps(first_history, "TerminateInstance"))
    assert len(replaced) == 2
    # ... Rollback ran and restored everything: nothing paused, tainted or locked; the other old
    # nodes keep their instances
    assert "Rollback" in {name for name, _ in states_entered(own)}
    assert leftovers(field, before, ca_before) == []
    after = {i.instance_id for i in field.state().instances}
    assert {i.instance_id for i in before.instances} - replaced <= after
