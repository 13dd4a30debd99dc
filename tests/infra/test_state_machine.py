"""The deployed definition is statemachine/rolling_upgrade.asl.json, wired to the step functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eks_rolling.steps import STEPS, Step
from infra import diagram
from infra.workflow import DefinitionError, load_definition
from tests.infra.cdk_support import ASL, REPO, WAVE_ASL, Synth, resolve


def _machine(synth: Synth) -> dict[str, Any]:
    _, machine = synth.roll_machine()
    props: dict[str, Any] = machine["Properties"]
    return props


def rendered_definition(synth: Synth, *, wave: bool = False) -> str:
    """DefinitionString with intrinsics resolved and DefinitionSubstitutions applied, as CFN would."""
    props = synth.wave_machine()[1]["Properties"] if wave else _machine(synth)
    text = resolve(props["DefinitionString"], synth.template)
    assert isinstance(text, str)
    for key, value in resolve(props.get("DefinitionSubstitutions", {}), synth.template).items():
        text = text.replace("${" + key + "}", str(value))
    return text


def test_definition_is_the_asl_file_after_substitution(synth: Synth) -> None:
    # Given each step's function (by its handler) and its fake deployed ARN
    functions = synth.functions_by_handler()
    arns = {
        s.placeholder: resolve({"Fn::GetAtt": [functions[s.handler][0], "Arn"]}, synth.template)
        for s in STEPS
    }
    # When the template's definition is rendered
    deployed = rendered_definition(synth)
    wave_id, _ = synth.wave_machine()
    arns["RollWaveStateMachineArn"] = resolve({"Ref": wave_id}, synth.template)
    # Then nothing is left unsubstituted, and it IS the ASL file with each placeholder -> its
    # function, and the wave machine's ARN where it starts the waves
    assert "${" not in deployed
    expected = ASL.read_text()
    for placeholder, arn in arns.items():
        expected = expected.replace("${" + placeholder + "}", arn)
    assert json.loads(deployed) == json.loads(expected)
    # ... and the wave machine runs roll_wave.asl.json the same way
    deployed_wave = rendered_definition(synth, wave=True)
    expected_wave = WAVE_ASL.read_text()
    for placeholder, arn in arns.items():
        expected_wave = expected_wave.replace("${" + placeholder + "}", arn)
    assert "${" not in deployed_wave and json.loads(deployed_wave) == json.loads(expected_wave)


def test_every_task_points_at_its_steps_function(synth: Synth) -> None:
    deployed = json.loads(rendered_definition(synth))
    functions = synth.functions_by_handler()

    def tasks(states: dict[str, Any]) -> dict[str, str]:
        out = {}
        for name, state in states.items():
            if state["Type"] == "Task":
                out[name] = state["Resource"]
            if state["Type"] == "Map":
                out.update(tasks(state["ItemProcessor"]["States"]))
        return out

    wave = json.loads(rendered_definition(synth, wave=True))
    found = {**tasks(deployed["States"]), **tasks(wave["States"])}
    for child in ("RollWave", "RevertWave"):
        assert found.pop(child) == "arn:aws:states:::states:startExecution.sync:2"
    assert found.pop("ReadWave") == "arn:aws:states:::aws-sdk:s3:getObject"
    assert set(found) == {s.state for s in STEPS}
    for name, resource in found.items():
        step = next(s for s in STEPS if s.state == name)
        assert resource.endswith(f":function:{functions[step.handler][0]}")


def test_logs_everything_to_a_vended_log_group(synth: Synth) -> None:
    logging = _machine(synth)["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is True
    group_id = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group = synth.template["Resources"][group_id]["Properties"]
    assert resolve(group["LogGroupName"], synth.template).startswith("/aws/vendedlogs/states/eks-rolling-")
    assert group["RetentionInDays"] == synth.context["log_retention_days"]


def test_tracing_and_timeout_backstop(synth: Synth) -> None:
    props = _machine(synth)
    assert props["TracingConfiguration"] == {"Enabled": True}
    timeout = json.loads(rendered_definition(synth))["TimeoutSeconds"]
    assert 0 < timeout <= int(synth.context.get("lock_ttl_s", 86400))
    assert props["StateMachineName"] == f"eks-rolling-{synth.context['cluster_name']}"


def _asl_with(tmp_path: Path, edit: Any) -> Path:
    body = json.loads(ASL.read_text())
    edit(body)
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(body))
    return path


def test_a_placeholder_without_a_step_fails_synth(tmp_path: Path) -> None:
    path = _asl_with(
        tmp_path, lambda b: b["States"]["ResolveTarget"].update(Resource="${CordonNodeFunctionArn}")
    )
    with pytest.raises(DefinitionError, match=r"CordonNodeFunctionArn.*ResolveTargetFunctionArn"):
        load_definition(path, STEPS)


def test_a_definition_without_timeout_fails_synth(tmp_path: Path) -> None:
    path = _asl_with(tmp_path, lambda b: b.pop("TimeoutSeconds"))
    with pytest.raises(DefinitionError, match="TimeoutSeconds"):
        load_definition(path, STEPS)


def test_a_step_the_definition_never_uses_fails_synth() -> None:
    with pytest.raises(DefinitionError, match=r"never used.*CordonNodeFunctionArn"):
        load_definition(ASL, (*STEPS, Step("cordon_node")))


def test_state_machine_doc_is_generated_from_the_asl() -> None:
    # docs/state-machine.md is `python -m infra.diagram` output; regenerate it when the ASL changes
    current = (REPO / "docs" / "state-machine.md").read_text()
    assert current == diagram.render(json.loads(ASL.read_text())), (
        "run: python -m infra.diagram > docs/state-machine.md"
    )


def test_diagram_shows_every_state_and_nests_maps() -> None:
    body = json.loads(ASL.read_text())
    text = diagram.mermaid(body)
    lines = [line.strip() for line in text.splitlines()]

    def walk(states: dict[str, Any], depth: int) -> None:
        for name, state in states.items():
            assert f'"{name}' in text, name  # a node label, or the title of a Map's subgraph
            if state["Type"] == "Map":
                assert any(line.startswith("subgraph ") and f'"{name}: Map over' in line for line in lines)
                walk(state["ItemProcessor"]["States"], depth + 1)

    walk(body["States"], 0)
    assert sum(line.startswith("subgraph ") for line in lines) == lines.count("end")
