"""End-to-end fixtures: a fresh field-report sandbox per test and the real state machine in moto."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from eks_rolling.aws.asg import AsgOps, AsgState
from eks_rolling_sandbox import checks
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.scenarios import Scenario, field_report
from eks_rolling_sandbox.traffic.availability import AvailabilityMonitor

FAST = {
    "batch_size": "2",
    "deregistration_delay_s": "10",
    "poll_interval_s": "5",
    # Above the realistic profile's slowest boot (90 s x 1.33 jitter = 120 s; the Redis tests run
    # in it too) with room for a loaded sandbox: 120 s timed out a realistic Sentinel roll once.
    "new_nodes_timeout_s": "240",
    "drain_timeout_s": "120",
    "owners_ready_timeout_s": "120",
}


@dataclass
class Field:
    env: SandboxEnv
    scenario: Scenario
    asg: AsgOps

    def state(self) -> AsgState:
        return self.asg.describe(self.scenario.asg_name)

    def autoscaler_replicas(self) -> int:
        d = self.env.sandbox.store.get("deployments", *self.scenario.autoscaler)
        assert d is not None
        return int(d["spec"]["replicas"])

    def runner(self, **settings: str) -> LocalRunner:
        return LocalRunner(self.env, time_scale=0.05, settings={**FAST, **settings})

    def monitor(self) -> AvailabilityMonitor:
        return AvailabilityMonitor(self.env.sandbox.store).start()


@pytest.fixture
def field() -> Iterator[Field]:
    with SandboxEnv() as env:
        scenario = field_report(env, redis=False)
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2")))


def states_entered(history: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    import json

    out = []
    for ev in history:
        d = ev.get("stateEnteredEventDetails")
        if d:
            try:
                out.append((d["name"], json.loads(d.get("input") or "{}")))
            except ValueError:
                out.append((d["name"], {}))
    return out


def tainted_in_group(field: Field, key: str) -> list[str]:
    return checks.tainted_in_group(field.env, field.state(), key)


def leftovers(field: Field, before: AsgState, ca_before: int) -> list[str]:
    """What a finished run left paused or changed: empty when everything was restored."""
    return checks.leftovers(
        field.env, field.scenario.asg_name, before, autoscaler=(*field.scenario.autoscaler, ca_before)
    )


def failed_attempts(history: list[dict[str, Any]]) -> dict[str, int]:
    """Task attempts that failed, by error name: each one the ASL retried or caught."""
    from collections import Counter

    return dict(
        Counter(
            e["lambdaFunctionFailedEventDetails"].get("error", "")
            for e in history
            if e["type"] == "LambdaFunctionFailed"
        )
    )


def record_run(row: Any, result: dict[str, Any], history: list[dict[str, Any]], injected: str) -> None:
    """The fault matrix's measured numbers for one execution (see tests/factories/fault_matrix.py)."""
    row.injected = injected
    row.outcome = result["status"]
    row.error = result.get("error")
    row.numbers["execution_s"] = round((result["stopDate"] - result["startDate"]).total_seconds(), 1)
    row.numbers["failed_attempts"] = failed_attempts(history)
