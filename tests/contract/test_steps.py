"""One spelling per step: the ASL, the step registry, lambdas/, the models and the error classes
must agree. These are the checks that catch a renamed step or a typo'd error name before deploy."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eks_rolling import errors, models
from eks_rolling.steps import STEPS

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "rolling_upgrade.asl.json").read_text())
WAVE_ASL = json.loads((ROOT / "statemachine" / "roll_wave.asl.json").read_text())
WAVE_PLACEHOLDER = "RollWaveStateMachineArn"
LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"}


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States dict it lives in), through nested Map processors."""
    for name, st in states.items():
        yield name, st, states
        if st["Type"] == "Map":
            yield from all_states(st["ItemProcessor"]["States"])


def both() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """The roll (parent) and its wave (child) machines' states."""
    yield from all_states(ASL["States"])
    yield from all_states(WAVE_ASL["States"])


ALL_TASKS = [(name, st) for name, st, _ in both() if st["Type"] == "Task"]
# Lambda Tasks; RollWave (and RevertWave, for revert_on_alarm) starts a child execution
# (states:startExecution.sync:2), ReadWave reads a stored wave's batches (aws-sdk:s3:getObject).
SERVICE_TASKS = {"RollWave", "RevertWave", "ReadWave"}
TASKS = {name: st for name, st in ALL_TASKS if name not in SERVICE_TASKS}


def test_every_step_has_exactly_one_task_state_and_placeholder() -> None:
    assert len(TASKS) == len(ALL_TASKS) - len(SERVICE_TASKS)
    assert set(TASKS) == {s.state for s in STEPS}
    for step in STEPS:
        assert TASKS[step.state]["Resource"] == "${" + step.placeholder + "}"
    placeholders = set(re.findall(r"\$\{([A-Za-z]+)\}", json.dumps(ASL) + json.dumps(WAVE_ASL)))
    assert placeholders == {s.placeholder for s in STEPS} | {WAVE_PLACEHOLDER}


@pytest.mark.parametrize("state", ["RollWave", "RevertWave"])
def test_the_roll_starts_each_wave_as_a_linked_child_execution(state: str) -> None:
    (wave,) = [st for name, st in ALL_TASKS if name == state]
    assert wave["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
    params = wave["Parameters"]
    assert params["StateMachineArn"] == "${" + WAVE_PLACEHOLDER + "}"
    assert params["Input"]["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$"] == "$$.Execution.Id"
    assert params["Name.$"] == "$.wave.name"


def test_every_step_has_a_handler_module_and_no_stray_modules() -> None:
    modules = {p.stem for p in (ROOT / "lambdas").glob("*.py") if not p.stem.startswith("_")}
    assert modules == {s.id for s in STEPS}
    for step in STEPS:
        module, _, attr = step.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr))


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.id)
def test_task_parameters_match_the_input_model(step) -> None:  # type: ignore[no-untyped-def]
    model = getattr(models, f"{step.state}Input")
    assert hasattr(models, f"{step.state}Output")
    keys = {k.removesuffix(".$") for k in TASKS[step.state]["Parameters"]}
    fields = model.model_fields
    assert keys <= set(fields), (
        f"{step.state} passes {keys - set(fields)} that {model.__name__} does not accept"
    )
    required = {n for n, f in fields.items() if f.is_required()}
    assert required <= keys, f"{step.state} does not pass required {required - keys}"


def test_every_task_retries_lambda_service_errors_and_our_retryable_errors() -> None:
    retryable = {c.__name__ for c in errors.RETRYABLE_ERRORS}
    for name, task in TASKS.items():
        matched = {e for r in task["Retry"] for e in r["ErrorEquals"]}
        assert matched >= LAMBDA_SERVICE_ERRORS, name
        assert retryable <= matched, name
        assert task.get("TimeoutSeconds"), name


def test_error_names_in_the_asl_exist_and_match_their_family() -> None:
    known = set(errors.error_names(errors.EksRollingError))
    for name, st, _ in both():
        for rule in st.get("Retry", []) + st.get("Catch", []):
            for err in rule["ErrorEquals"]:
                if not err.startswith(("States.", "Lambda.", "StepFunctions.", "S3.")):
                    assert err in known, f"{name} names unknown error {err}"
        for rule in st.get("Retry", []):
            for err in rule["ErrorEquals"]:
                if err in known:
                    assert issubclass(getattr(errors, err), errors.RetryableError), (
                        f"{name} retries permanent {err}"
                    )


def test_every_transition_targets_an_existing_state_and_every_state_is_reachable() -> None:
    def check(states: dict[str, Any], start: str) -> None:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            assert name in states, f"transition to missing state {name}"
            seen.add(name)
            st = states[name]
            nxt = (
                [st.get("Next"), st.get("Default")]
                + [c["Next"] for c in st.get("Choices", [])]
                + [c["Next"] for c in st.get("Catch", [])]
            )
            todo += [n for n in nxt if n]
            if st["Type"] == "Map":
                proc = st["ItemProcessor"]
                check(proc["States"], proc["StartAt"])
        assert seen == set(states), f"unreachable: {set(states) - seen}"

    check(ASL["States"], ASL["StartAt"])
    check(WAVE_ASL["States"], WAVE_ASL["StartAt"])


def test_every_wait_loop_is_driven_by_a_model_field() -> None:
    # Waits read their duration from a step's output; the step enforces the deadline.
    output_fields = {f for s in STEPS for f in getattr(models, f"{s.state}Output").model_fields}
    for name, st, _ in both():
        if st["Type"] == "Wait":
            assert "SecondsPath" in st, name
            assert st["SecondsPath"].rsplit(".", 1)[-1] in output_fields, name


def test_no_jsonata_and_payloads_stay_small() -> None:
    assert "QueryLanguage" not in ASL and "QueryLanguage" not in WAVE_ASL
    # Plans carry node targets, never pods: a 250-node plan stays far below the 256 KiB limit.
    plan = models.Plan(
        asg_name="ng",
        target_version="2",
        outdated=250,
        batches=[
            [
                models.NodeTarget(
                    instance_id=f"i-{k:017d}",
                    node_name=f"ip-10-0-{k // 250}-{k % 250}.ec2.internal",
                    az="us-east-1a",
                    pods=30,
                )
            ]
            for k in range(250)
        ],
        findings=[],
        surge=models.SurgePlan(desired_before=250, max_before=260, peak_desired=251),
        estimated_history_events=20000,
        has_work=True,
        blocked=False,
    )
    assert len(plan.model_dump_json()) < 64 * 1024
