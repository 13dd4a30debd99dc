"""One Lambda per step of eks_rolling.steps.STEPS, built from the real handlers, in the VPC."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from eks_rolling.settings import Settings
from eks_rolling.steps import STEPS, Step
from infra.steps import Need, steps_needing
from tests.infra.cdk_support import Synth, allowed, function_role, resolve, role_statements

IDS = [s.id for s in STEPS]


def _fn(synth: Synth, step: Step) -> tuple[str, dict[str, Any]]:
    return synth.functions_by_handler()[step.handler]


def test_one_function_per_step_and_no_other(synth: Synth) -> None:
    # Given the step registry, When the stack is synthesized
    handlers = sorted(r["Properties"]["Handler"] for r in synth.resources("AWS::Lambda::Function").values())
    # Then there is exactly one function per step, with the step's handler string
    assert handlers == sorted(s.handler for s in STEPS)


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_handler_string_names_a_real_handler(step: Step) -> None:
    module, attr = step.handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), attr))


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_function_runtime_size_and_tracing(synth: Synth, step: Step) -> None:
    props = _fn(synth, step)[1]["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["x86_64"]
    assert props["Timeout"] == 300
    assert props["MemorySize"] == 1024  # sized from the measured cold start: test_layer_bytecode.py
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "ReservedConcurrentExecutions" not in props  # optional, off in cdk.json


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_function_is_in_the_configured_vpc(synth: Synth, step: Step) -> None:
    vpc = _fn(synth, step)[1]["Properties"]["VpcConfig"]
    assert vpc["SubnetIds"] == synth.context["subnet_ids"]
    assert vpc["SecurityGroupIds"] == synth.context["security_group_ids"]


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_state_machine_may_invoke_the_function(synth: Synth, step: Step) -> None:
    # Given the function and the state machine's role
    fn_id, _ = _fn(synth, step)
    _, machine = synth.machine_running(step.placeholder)
    sm_role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    # Then lambda:InvokeFunction is allowed on exactly that function (and its versions)
    fn_arn = resolve({"Fn::GetAtt": [fn_id, "Arn"]}, synth.template)
    granted = allowed(role_statements(synth.template, sm_role), "lambda:InvokeFunction")
    assert any(fn_arn in s.resources for s in granted)
    assert all(r.startswith(fn_arn) for s in granted if fn_arn in s.resources for r in s.resources)


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_environment_is_what_settings_reads(synth: Synth, step: Step, clean_env: pytest.MonkeyPatch) -> None:
    # Given the function's environment as deployed
    env = resolve(_fn(synth, step)[1]["Properties"]["Environment"]["Variables"], synth.template)
    assert env["POWERTOOLS_SERVICE_NAME"] == "eks-rolling"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    # When the runtime reads its Settings from it
    for key, value in env.items():
        clean_env.setenv(key, value)
    settings = Settings()
    # Then every value from cdk.json arrives typed, plus the stack's own
    ctx = synth.context
    assert settings.cluster_name == ctx["cluster_name"]
    assert settings.batch_size == ctx["batch_size"]
    assert settings.suspend_processes == tuple(ctx["suspend_processes"])
    assert settings.drain_timeout_s == ctx["drain_timeout_s"]
    assert settings.opt_in_tag_key == ctx["opt_in_tag_key"]
    assert settings.taint_key == ctx["taint_key"]
    assert settings.region == "eu-west-1"  # AWS::Region, never the us-east-1 default
    (table_id,) = synth.resources("AWS::DynamoDB::Table")
    assert settings.lock_table == f"<{table_id}>"
    # Only the steps that may publish know the topic
    publishes = step in steps_needing(Need.NOTIFY)
    assert ("EKS_ROLLING_NOTIFY_TOPIC_ARN" in env) is publishes


def test_settings_from_context_reach_every_function(variant: Synth, clean_env: pytest.MonkeyPatch) -> None:
    for _, fn in variant.resources("AWS::Lambda::Function").items():
        env = resolve(fn["Properties"]["Environment"]["Variables"], variant.template)
        assert env["EKS_ROLLING_BATCH_SIZE"] == "3"
        assert env["EKS_ROLLING_OPT_IN_TAG_KEY"] == "example.com/eks-rolling"
        assert fn["Properties"]["ReservedConcurrentExecutions"] == 2


def test_one_code_asset_and_one_layer(synth: Synth) -> None:
    functions = synth.resources("AWS::Lambda::Function").values()
    assert len({f["Properties"]["Code"]["S3Key"] for f in functions}) == 1
    (layer_id,) = synth.resources("AWS::Lambda::LayerVersion")
    assert all(f["Properties"]["Layers"] == [{"Ref": layer_id}] for f in functions)
    layer = synth.template["Resources"][layer_id]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["x86_64"]


def test_code_asset_holds_only_the_runtime(synth: Synth) -> None:
    # The staged folder and the asset copied into the cloud assembly
    code_hash = next(iter(synth.resources("AWS::Lambda::Function").values()))["Properties"]["Code"]["S3Key"]
    asset = synth.outdir / f"asset.{code_hash.removesuffix('.zip')}"
    for root in (synth.code_dir, asset):
        assert sorted(p.name for p in root.iterdir()) == ["eks_rolling", "lambdas"]
        names = {p.name for p in root.rglob("*")}
        assert "__pycache__" not in names
        assert not any(n.endswith(".pyc") for n in names)
        assert (root / "lambdas" / "drain_node.py").is_file()


def test_each_function_logs_to_its_own_group_with_retention(synth: Synth) -> None:
    groups = synth.resources("AWS::Logs::LogGroup")
    for fn_id, fn in synth.resources("AWS::Lambda::Function").items():
        group_id = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_id]["Properties"]["RetentionInDays"] == synth.context["log_retention_days"]
        # and the function's role may write there, and nowhere else
        writes = allowed(role_statements(synth.template, function_role(fn)), "logs:PutLogEvents")
        assert [s.resources for s in writes] == [(f"<{group_id}>",)], fn_id
