"""A run that died without its Catch path (here: aborted by an operator mid-drain) leaves its lock,
its taint, cluster-autoscaler at 0 and suspended processes. The next trigger takes the lock over,
restores what the dead run left from the record it saved on the ASG, and finishes the roll,
instead of ending as "skipped" for the lock's whole TTL."""

from __future__ import annotations

import json
import time

import pytest

from eks_rolling.labels import TAINT_RETIRING
from tests.e2e.conftest import Field, leftovers, record_run, states_entered, tainted_in_group
from tests.factories.fault_matrix import FaultRow

pytestmark = pytest.mark.slow
TAINT = TAINT_RETIRING


def _tainted(field: Field) -> list[str]:
    return tainted_in_group(field, TAINT)


def _lock_owner(field: Field) -> str | None:
    items = field.env.aws("dynamodb").scan(TableName=field.env.lock_table)["Items"]
    return items[0]["owner"]["S"] if items else None


@pytest.mark.fault("F11")
def test_a_dead_runs_lock_is_taken_over_and_what_it_paused_is_restored(
    field: Field, fault_row: FaultRow
) -> None:
    # Given a roll aborted by an operator mid-drain: no Catch, no Rollback, no ReleaseLock
    before, ca_before = field.state(), field.autoscaler_replicas()
    assert ca_before > 0
    event = field.scenario.bump_launch_template()
    monitor = field.monitor()
    with field.runner() as runner:
        dead = runner.start(event)
        deadline = time.monotonic() + 120
        while "DrainNode" not in [n for n, _ in states_entered(runner.history(dead))]:
            assert time.monotonic() < deadline, "the first run never reached DrainNode"
            assert runner.describe(dead)["status"] == "RUNNING"
            time.sleep(0.2)
        field.env.aws("stepfunctions").stop_execution(executionArn=dead, error="Operator", cause="abort")
        stopped = runner.wait(dead, timeout=30)
        # AWS reports ABORTED; moto's interpreter, stopped inside a Map, ends the execution as
        # FAILED (States.Runtime) without running any Catch. Either way: dead, nothing restored.
        assert stopped["status"] in ("ABORTED", "FAILED"), stopped
        assert "Rollback" not in [n for n, _ in states_entered(runner.history(dead))]
        # ... and its wave (a .sync child) was stopped with it, as Step Functions does
        waves = [runner.describe(c)["status"] for c in runner.children(dead)]
        assert waves and "RUNNING" not in waves, waves
        time.sleep(1.0)  # an invocation in flight when the abort came finishes on its own
        # ... it left everything paused and its lock held
        assert field.autoscaler_replicas() == 0
        assert _tainted(field)
        assert set(field.state().suspended_processes) >= {"AZRebalance"}
        assert [k for k in field.state().tags if k.startswith("eks-rolling/saved/")]
        assert _lock_owner(field) == dead

        # When a new trigger comes for the same group
        result = runner.run({"asgName": field.scenario.asg_name}, timeout=300)
        history = runner.history(result["executionArn"])
        entered = states_entered(history)
    monitor.stop()
    record_run(fault_row, result, history, "StopExecution mid-drain, then a manual start")
    fault_row.restored = not leftovers(field, before, ca_before)
    fault_row.pdb_violations = monitor.violations
    assert monitor.violations == 0, monitor.report()

    # Then it took the lock over, restored the dead run's leftovers, and rolled the group
    assert result["status"] == "SUCCEEDED", result.get("cause")
    out = json.loads(result["output"])["results"][0]
    assert out["status"] == "rolled", out
    plan_input = next(inp for name, inp in entered if name == "PlanRoll")
    assert plan_input["lock"]["took_over_from"] == dead
    restored = plan_input["lock"]["restored"]
    assert restored["autoscaler_replicas"] == ca_before
    assert restored["untainted"]
    after = field.state()
    assert not [i for i in after.instances if field.asg.is_outdated(i, after)]
    # Surge nodes the dead run had moved pods to stay, as in any Rollback (they hold workloads);
    # idle ones were given back. The new roll keeps that capacity and nothing more.
    assert after.desired == restored["desired"] <= before.desired + 2
    assert after.max_size == before.max_size
    assert not set(after.suspended_processes)
    assert field.autoscaler_replicas() == ca_before
    assert not _tainted(field)
    assert not [k for k in after.tags if k.startswith("eks-rolling/saved/")]
    assert _lock_owner(field) is None
