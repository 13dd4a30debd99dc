"""Typed context: missing or invalid values fail synth with a message naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eks_rolling.settings import Settings
from infra.app import build_app, project_context
from infra.config import RUNTIME_KEYS, ConfigError, StackConfig, load_config
from infra.stack import StackError
from tests.infra.cdk_support import REPO, stub_package


@pytest.fixture
def context() -> dict[str, Any]:
    return project_context()


def test_cdk_json_is_a_valid_example(context: dict[str, Any]) -> None:
    config = load_config(context)
    assert config.cluster_name == "prod-eks"
    assert len(config.subnet_ids) == 2


@pytest.mark.parametrize("key", ["cluster_name", "vpc_id", "subnet_ids", "security_group_ids"])
def test_missing_key_fails_synth_naming_it(context: dict[str, Any], key: str) -> None:
    del context[key]
    with pytest.raises(ConfigError, match=rf"{key}: required but missing .*-c {key}="):
        build_app(context)  # fails before any construct or package is built


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("vpc_id", "vpc-xyz", r"vpc_id: 'vpc-xyz' is not valid \(expected e\.g\. vpc-"),
        ("subnet_ids", ["subnet-0a1b2c3d4e5f67891", "sub-1"], r"subnet_ids\[1\]: 'sub-1' is not valid"),
        ("security_group_ids", [], "security_group_ids: needs at least one value"),
        ("batch_size", 0, "batch_size: Input should be greater than or equal to 1"),
        ("batch_size", "many", "batch_size: Input should be a valid integer"),
        ("drain_timeout_s", -5, "drain_timeout_s: Input should be greater than or equal to 1"),
        ("log_retention_days", 42, "log_retention_days: CloudWatch Logs accepts only"),
        ("suspend_processes", ["Launch"], r"suspend_processes: must not include \['Launch'\]"),
        ("notify_topic_arn", "arn:aws:sqs:eu-west-1:123456789012:q", "notify_topic_arn: .* is not valid"),
        ("redis_secret_arns", "not-an-arn", r"redis_secret_arns\[0\]: 'not-an-arn' is not valid"),
        ("kubernetes_group", "system:masters", "kubernetes_group: 'system:masters' is not valid"),
        ("taint_key", "not a key", "taint_key: 'not a key' is not valid"),
        ("log_level", "LOUD", "log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("maintenance_windows", "Mon 22:00/4h Mars/Base", "maintenance_windows: .*time zone 'Mars/Base'"),
        ("pause_timeout_s", 86400, "pause_timeout_s: Input should be less than or equal to 72000"),
    ],
)
def test_invalid_value_fails_synth_naming_the_key(
    context: dict[str, Any], key: str, value: Any, message: str
) -> None:
    context[key] = value
    with pytest.raises(ConfigError, match=message):
        build_app(context)


def test_every_problem_is_reported_at_once(context: dict[str, Any]) -> None:
    del context["cluster_name"]
    context["batch_size"] = 99
    with pytest.raises(ConfigError) as err:
        load_config(context)
    assert "cluster_name: required" in str(err.value)
    assert "batch_size: Input should be less than or equal to 50" in str(err.value)


def test_a_misspelt_key_is_caught(context: dict[str, Any]) -> None:
    context["drain_timeout"] = 300
    with pytest.raises(
        ConfigError, match="drain_timeout: unknown context key; did you mean 'drain_timeout_s'"
    ):
        load_config(context)


def test_cdk_and_feature_flag_keys_are_left_alone(context: dict[str, Any]) -> None:
    context["@aws-cdk/core:newStyleStackSynthesis"] = True
    context["acknowledged-issue-numbers"] = [34892]  # written by `cdk acknowledge`
    context["aws:cdk:bundling-stacks"] = []
    context["availability-zones:account=123456789012:region=eu-west-1"] = ["eu-west-1a"]
    load_config(context)


def test_some_notification_target_is_required(context: dict[str, Any]) -> None:
    context["notify_email"] = None
    with pytest.raises(ConfigError, match="notify_email / notify_topic_arn: set at least one"):
        load_config(context)


def test_lock_must_outlive_an_execution(context: dict[str, Any], tmp_path: Path) -> None:
    context["lock_ttl_s"] = 3600  # shorter than the ASL's TimeoutSeconds (24 h)
    with pytest.raises(StackError, match=r"lock_ttl_s .* shorter than the state machine's TimeoutSeconds"):
        build_app(context, package=stub_package(tmp_path))


def test_command_line_strings_are_parsed(context: dict[str, Any]) -> None:
    # -c key=value always passes strings
    context.update(
        subnet_ids="subnet-0a1b2c3d4e5f67891, subnet-0a1b2c3d4e5f67892",
        security_group_ids='["sg-0a1b2c3d4e5f67893"]',
        batch_size="4",
        raise_max_size="false",
        reserved_concurrency="",
        notify_topic_arn="",
    )
    config = load_config(context)
    assert config.subnet_ids == ("subnet-0a1b2c3d4e5f67891", "subnet-0a1b2c3d4e5f67892")
    assert config.security_group_ids == ("sg-0a1b2c3d4e5f67893",)
    assert (config.batch_size, config.raise_max_size) == (4, False)
    assert config.reserved_concurrency is None and config.notify_topic_arn is None


def test_defaults_are_the_runtime_defaults() -> None:
    minimal = StackConfig(
        cluster_name="c",
        vpc_id="vpc-0a1b2c3d4e5f67890",
        subnet_ids=("subnet-0a1b2c3d4e5f67891",),
        security_group_ids=("sg-0a1b2c3d4e5f67893",),
        notify_email="a@example.com",
    )
    for key in RUNTIME_KEYS:
        assert getattr(minimal, key) == Settings.model_fields[key].default, key


def test_synth_entry_point_reports_bad_context_without_a_traceback() -> None:
    # python -m infra.synth (make synth) checks context before building the layer
    result = subprocess.run(
        [sys.executable, "-m", "infra.synth", "-c", "vpc_id=nope", "--output", "/nonexistent/never-written"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "vpc_id: 'nope' is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_context_key_is_documented() -> None:
    text = (REPO / "docs" / "deploy.md").read_text()
    assert [k for k in StackConfig.model_fields if f"`{k}`" not in text] == []


def test_a_lambda_hook_not_in_hook_functions_fails_synth_naming_it(context: dict[str, Any]) -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:pre-drain-check"
    with pytest.raises(ConfigError, match="hook_functions: add"):
        load_config({**context, "pre_drain_hooks": arn})
    assert load_config({**context, "pre_drain_hooks": arn, "hook_functions": arn}).hook_functions == (arn,)
    with pytest.raises(ConfigError, match="hook_functions"):
        load_config({**context, "hook_functions": "arn:aws:lambda:eu-west-1:123456789012:function:*"})


def test_hook_api_arns_name_exact_post_routes(context: dict[str, Any]) -> None:
    route = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/node-replaced"
    assert load_config({**context, "hook_api_arns": route}).hook_api_arns == (route,)
    with pytest.raises(ConfigError, match="hook_api_arns"):
        load_config({**context, "hook_api_arns": "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/*"})


def test_revert_on_alarm_without_the_node_roles_fails_synth_naming_the_key(context: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="node_role_arns"):
        load_config({**context, "revert_on_alarm": "true"})
    role = "arn:aws:iam::123456789012:role/eks-node"
    assert load_config({**context, "revert_on_alarm": "true", "node_role_arns": role}).node_role_arns == (
        role,
    )
