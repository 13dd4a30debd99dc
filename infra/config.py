"""The stack's typed configuration, read from CDK context (`cdk.json` "context" or `-c key=value`).

Every context key is a field name below. Values given with `-c` arrive as strings, so lists also
accept "a,b" or a JSON array, and numbers/booleans their usual spellings. A missing or invalid
value fails synth with one message naming every offending key.

The runtime knobs (batch size, deadlines, tag, taint...) are `eks_rolling.settings.Settings`
fields of the same name: their defaults come from there, and their values are checked by
`Settings` itself, so the Lambdas can never be deployed with a value they would reject.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from eks_rolling.labels import TAINT_RETIRING
from eks_rolling.planning.hooks import LAMBDA_ARN, kind_of, parse_hooks
from eks_rolling.planning.windows import parse_windows
from eks_rolling.settings import Settings


class ConfigError(ValueError):
    """CDK context is missing or invalid. The message names each offending key."""


# --- value types -------------------------------------------------------------------------------
def _split_list(value: Any) -> Any:
    """`-c subnet_ids=subnet-a,subnet-b` or `-c subnet_ids='["subnet-a"]'` -> a list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                return value
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _none_if_blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _pattern(regex: str, example: str) -> BeforeValidator:
    compiled = re.compile(regex)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not valid (expected e.g. {example})")
        return value

    return BeforeValidator(check)


ClusterName = Annotated[str, _pattern(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}", "prod-eks")]
VpcId = Annotated[str, _pattern(r"vpc-[0-9a-f]{8}(?:[0-9a-f]{9})?", "vpc-0123456789abcdef0")]
SubnetId = Annotated[str, _pattern(r"subnet-[0-9a-f]{8}(?:[0-9a-f]{9})?", "subnet-0123456789abcdef0")]
SecurityGroupId = Annotated[str, _pattern(r"sg-[0-9a-f]{8}(?:[0-9a-f]{9})?", "sg-0123456789abcdef0")]
SnsTopicArn = Annotated[
    str,
    _pattern(
        r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?",
        "arn:aws:sns:eu-west-1:123456789012:platform-alerts",
    ),
]
SecretArn = Annotated[
    str,
    _pattern(
        r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis/auth-AbCdEf",
    ),
]
RoleArn = Annotated[
    str,
    _pattern(
        r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+", "arn:aws:iam::123456789012:role/eks-node"
    ),
]
LambdaArn = Annotated[
    str,
    _pattern(LAMBDA_ARN.pattern, "arn:aws:lambda:eu-west-1:123456789012:function:pre-drain-check"),
]
# An API Gateway route, exactly (no wildcard): arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH
ExecuteApiArn = Annotated[
    str,
    _pattern(
        r"arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+/[A-Za-z0-9_-]+/POST/[A-Za-z0-9._~/-]*",
        "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/node-retiring",
    ),
]
Email = Annotated[str, _pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "oncall@example.com")]
# DNS-1123 label (namespaces, Deployment names) and a Kubernetes qualified name (taint keys).
K8sName = Annotated[str, _pattern(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", "kube-system")]
QualifiedName = Annotated[
    str,
    _pattern(
        r"(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?",
        TAINT_RETIRING,
    ),
]
# EventBridge schedule expressions: rate(1 day), rate(6 hours), cron(0 6 * * ? *).
ScheduleExpression = Annotated[
    str,
    _pattern(
        r"rate\((?:1 (?:minute|hour|day)|(?:[2-9]|[1-9][0-9]+) (?:minutes|hours|days))\)|cron\(\S+(?: \S+){5}\)",
        "rate(1 day) or cron(0 6 * * ? *)",
    ),
]
# Kubernetes RBAC group of the access entry; EKS reserves the `system:`/`eks:`/`aws:` prefixes.
KubeGroup = Annotated[
    str, _pattern(r"(?!system:|eks:|aws:|amazon:|iam:)[A-Za-z0-9][A-Za-z0-9:._-]{0,99}", "eks-rolling")
]


def _non_empty(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("needs at least one value")
    return value


Listed = BeforeValidator(_split_list)
NonEmpty = AfterValidator(_non_empty)
Blankable = BeforeValidator(_none_if_blank)

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# Auto Scaling process names; the roll itself needs Launch and Terminate.
SCALING_PROCESSES: Final = frozenset(
    {
        "AZRebalance",
        "AlarmNotification",
        "ScheduledActions",
        "AddToLoadBalancer",
        "HealthCheck",
        "ReplaceUnhealthy",
        "InstanceRefresh",
        "Launch",
        "Terminate",
    }
)
NEEDED_BY_THE_ROLL: Final = frozenset({"Launch", "Terminate"})


def _setting(field: str) -> Any:
    """The Settings field itself (default, bounds, description), so context obeys the same rules."""
    return copy.deepcopy(Settings.model_fields[field])


# Settings fields the stack takes from context (same names), beside cluster_name.
RUNTIME_KEYS: Final = (
    "opt_in_tag_key",
    "opt_in_tag_value",
    "taint_key",
    "autoscaler_namespace",
    "autoscaler_deployment",
    "batch_size",
    "raise_max_size",
    "suspend_processes",
    "delete_emptydir_data",
    "deregistration_delay_s",
    "max_nodes_per_wave",
    "wave_concurrency",
    "asg_concurrency",
    "poll_interval_s",
    "poll_cap_s",
    "new_nodes_timeout_s",
    "drain_timeout_s",
    "owners_ready_timeout_s",
    "lock_ttl_s",
    "api_timeout_s",
    "redis_enabled",
    "redis_failback",
    "redis_pause_ms",
    "redis_phase_timeout_s",
    "redis_socket_timeout_s",
    "redis_cleanup_wait_s",
    "node_selector",
    "exclude_selector",
    "az_sequential",
    "do_not_disrupt_timeout_s",
    "do_not_disrupt_on_deadline",
    "do_not_disrupt_poll_cap_s",
    "maintenance_windows",
    "pause_timeout_s",
    "pause_reminder_s",
    "gate_poll_s",
    "pre_drain_hooks",
    "post_replace_hooks",
    "hook_timeout_s",
    "hook_attempts",
    "hook_deadline_s",
    "hook_backoff_s",
    "hook_backoff_cap_s",
    "hook_signing_service",
    "canary_per_az",
    "health_alarms",
    "health_bake_s",
    "health_poll_s",
    "revert_on_alarm",
)


class StackConfig(BaseModel):
    """One deployment of eks-rolling: one EKS cluster, its VPC, where to send notifications."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- where ----------------------------------------------------------------------------------
    cluster_name: ClusterName = Field(description="EKS cluster whose self-managed node groups are rolled")
    vpc_id: VpcId = Field(description="VPC of the Lambdas (must reach the EKS API and the AWS APIs)")
    subnet_ids: Annotated[tuple[SubnetId, ...], Listed, NonEmpty] = Field(description="Private subnets")
    security_group_ids: Annotated[tuple[SecurityGroupId, ...], Listed, NonEmpty]

    # --- notifications ---------------------------------------------------------------------------
    notify_email: Annotated[Email | None, Blankable] = Field(None, description="Subscribed to the topic")
    notify_topic_arn: Annotated[SnsTopicArn | None, Blankable] = Field(
        None, description="An existing topic that also receives alarms and execution status changes"
    )

    # --- access ----------------------------------------------------------------------------------
    kubernetes_group: KubeGroup = Field("eks-rolling", description="Group bound by deploy/rbac.yaml")
    redis_secret_arns: Annotated[tuple[SecretArn, ...], Listed] = Field(
        (), description="Secrets Manager secrets holding Redis credentials (read-only)"
    )

    hook_functions: Annotated[tuple[LambdaArn, ...], Listed] = Field(
        (),
        description="Lambda functions the hook steps may invoke (lambda:InvokeFunction on exactly these); "
        "every Lambda hook of the settings or of an ASG's hook tags must be listed",
    )

    hook_api_arns: Annotated[tuple[ExecuteApiArn, ...], Listed] = Field(
        (),
        description="API Gateway routes of https:// hooks behind IAM authorization: execute-api:Invoke "
        "on exactly these",
    )

    # --- triggers ------------------------------------------------------------------------------
    create_trail: bool = Field(
        False,
        description="Create a CloudTrail trail of this region's write management events: EventBridge "
        "sees the API calls that start a roll only when one exists. Leave off if the account or "
        "organisation already has one",
    )
    drift_check_schedule: Annotated[ScheduleExpression | None, Blankable] = Field(
        None,
        description="EventBridge schedule that starts the state machine with the Scheduled Event, "
        "to catch AMI changes no event announces (resolve:ssm aliases); off by default",
    )

    # --- Lambda runtime --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    stalled_roll_minutes: int = Field(
        30,
        ge=5,
        le=1440,
        description="Alarm when the steps keep running but no node was replaced for this long",
    )
    log_retention_days: int = Field(365, description="Lambda and state machine logs (the audit trail)")
    reserved_concurrency: Annotated[int | None, Blankable] = Field(None, ge=1, le=1000)

    # --- the roll (eks_rolling.settings.Settings fields) -----------------------------------------
    opt_in_tag_key: str = Field(Settings.model_fields["opt_in_tag_key"].default, min_length=1, max_length=128)
    opt_in_tag_value: str = Field(
        Settings.model_fields["opt_in_tag_value"].default, min_length=1, max_length=256
    )
    taint_key: QualifiedName = _setting("taint_key")
    autoscaler_namespace: K8sName = _setting("autoscaler_namespace")
    autoscaler_deployment: K8sName = _setting("autoscaler_deployment")
    batch_size: int = _setting("batch_size")
    raise_max_size: bool = _setting("raise_max_size")
    suspend_processes: Annotated[tuple[str, ...], Listed] = _setting("suspend_processes")
    delete_emptydir_data: bool = _setting("delete_emptydir_data")
    deregistration_delay_s: int = _setting("deregistration_delay_s")
    max_nodes_per_wave: int = _setting("max_nodes_per_wave")
    wave_concurrency: int = _setting("wave_concurrency")
    asg_concurrency: int = _setting("asg_concurrency")
    poll_interval_s: int = _setting("poll_interval_s")
    poll_cap_s: int = _setting("poll_cap_s")
    new_nodes_timeout_s: int = _setting("new_nodes_timeout_s")
    drain_timeout_s: int = _setting("drain_timeout_s")
    owners_ready_timeout_s: int = _setting("owners_ready_timeout_s")
    lock_ttl_s: int = _setting("lock_ttl_s")
    api_timeout_s: float = _setting("api_timeout_s")
    redis_enabled: bool = _setting("redis_enabled")
    redis_failback: bool = _setting("redis_failback")
    redis_pause_ms: int = _setting("redis_pause_ms")
    redis_phase_timeout_s: int = _setting("redis_phase_timeout_s")
    redis_socket_timeout_s: float = _setting("redis_socket_timeout_s")
    redis_cleanup_wait_s: int = _setting("redis_cleanup_wait_s")
    node_selector: str = _setting("node_selector")
    exclude_selector: str = _setting("exclude_selector")
    az_sequential: bool = _setting("az_sequential")
    do_not_disrupt_timeout_s: int = _setting("do_not_disrupt_timeout_s")
    do_not_disrupt_on_deadline: Literal["fail", "evict"] = _setting("do_not_disrupt_on_deadline")
    do_not_disrupt_poll_cap_s: int = _setting("do_not_disrupt_poll_cap_s")
    maintenance_windows: str = _setting("maintenance_windows")
    pause_timeout_s: int = _setting("pause_timeout_s")
    pause_reminder_s: int = _setting("pause_reminder_s")
    gate_poll_s: int = _setting("gate_poll_s")
    pre_drain_hooks: str = _setting("pre_drain_hooks")
    post_replace_hooks: str = _setting("post_replace_hooks")
    hook_timeout_s: float = _setting("hook_timeout_s")
    hook_attempts: int = _setting("hook_attempts")
    hook_deadline_s: float = _setting("hook_deadline_s")
    hook_backoff_s: float = _setting("hook_backoff_s")
    hook_backoff_cap_s: float = _setting("hook_backoff_cap_s")
    hook_signing_service: str = _setting("hook_signing_service")
    canary_per_az: int = _setting("canary_per_az")
    health_alarms: str = _setting("health_alarms")
    health_bake_s: int = _setting("health_bake_s")
    health_poll_s: int = _setting("health_poll_s")
    revert_on_alarm: bool = _setting("revert_on_alarm")
    health_alarm_names: Annotated[tuple[str, ...], Listed] = Field(
        (),
        description="Further CloudWatch alarms an ASG's eks-rolling/health-alarms tag may name: the gate "
        "may read (cloudwatch:DescribeAlarms) exactly these and those of health_alarms",
    )

    node_role_arns: Annotated[tuple[RoleArn, ...], Listed] = Field(
        (),
        description="With revert_on_alarm: the IAM roles of the node groups' instance profiles; pointing an "
        "ASG back at a launch template needs iam:PassRole on them (to ec2.amazonaws.com only)",
    )

    def alarm_names(self) -> tuple[str, ...]:
        """Every alarm the health gate may read: the setting's and the listed ones."""
        named = (n.strip() for n in self.health_alarms.split(","))
        return tuple(dict.fromkeys([*(n for n in named if n), *self.health_alarm_names]))

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("maintenance_windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        parse_windows(value)  # a bad window fails synth, naming the bad part, not the first roll
        return value

    @field_validator("suspend_processes")
    @classmethod
    def _processes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - SCALING_PROCESSES)
        if unknown:
            raise ValueError(f"unknown process(es) {unknown}; known: {sorted(SCALING_PROCESSES)}")
        needed = sorted(NEEDED_BY_THE_ROLL & set(value))
        if needed:
            raise ValueError(f"must not include {needed}: the roll itself launches and terminates")
        return value

    @model_validator(mode="after")
    def _hooks_invokable(self) -> StackConfig:
        # parse_hooks raises HookError (a ValueError): pydantic names the key
        targets = parse_hooks(self.pre_drain_hooks) + parse_hooks(self.post_replace_hooks)
        missing = sorted({t for t in targets if kind_of(t) == "lambda"} - set(self.hook_functions))
        if missing:
            raise ValueError(
                f"hook_functions: add {missing}: the hook steps may invoke only the functions listed there"
            )
        return self

    @model_validator(mode="after")
    def _revert_can_pass_roles(self) -> StackConfig:
        if self.revert_on_alarm and not self.node_role_arns:
            raise ValueError(
                "node_role_arns: list the node instance roles: with revert_on_alarm, RevertTarget's "
                "UpdateAutoScalingGroup names a launch template, which needs iam:PassRole on its role"
            )
        return self

    @model_validator(mode="after")
    def _notified(self) -> StackConfig:
        if self.notify_email is None and self.notify_topic_arn is None:
            raise ValueError(
                "notify_email / notify_topic_arn: set at least one, so that a failed roll is never silent"
            )
        return self

    # --- derived -----------------------------------------------------------------------------------
    def settings_environment(self) -> dict[str, str]:
        """`EKS_ROLLING_*` variables for every Lambda, in the form pydantic-settings parses."""
        env = {"EKS_ROLLING_CLUSTER_NAME": self.cluster_name}
        for key in RUNTIME_KEYS:
            env[f"EKS_ROLLING_{key.upper()}"] = _env_value(getattr(self, key))
        return env


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return json.dumps(list(value))  # pydantic-settings reads complex fields as JSON
    return str(value)


FIELDS: Final = frozenset(StackConfig.model_fields)


def _describe(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    key = loc[0] if loc else ""
    where = key + "".join(f"[{p}]" for p in loc[1:])
    if error["type"] == "missing":
        return f'{where}: required but missing (set it in cdk.json "context" or pass -c {key}=...)'
    message = str(error["msg"]).removeprefix("Value error, ")
    if not where:
        return message
    got = repr(raw[key]) if key in raw and len(loc) == 1 else None
    return f"{where}: {message} (got {got})" if got and got not in message else f"{where}: {message}"


def _misspelt(key: str) -> str | None:
    """The field `key` was probably meant to be. CDK's own keys and feature flags carry ':' or
    '@'; other keys (other tools' context) are left alone unless they look like one of ours."""
    if key in FIELDS or ":" in key or key.startswith("@"):
        return None
    close = difflib.get_close_matches(key, sorted(FIELDS), n=1, cutoff=0.75)
    return close[0] if close else None


def load_config(context: Mapping[str, Any]) -> StackConfig:
    """Validate CDK context into a StackConfig; ConfigError naming every bad key otherwise."""
    raw = {k: v for k, v in context.items() if k in FIELDS}
    problems: list[str] = []
    for key in sorted(context):
        meant = _misspelt(key)
        if meant is not None:
            problems.append(f"{key}: unknown context key; did you mean {meant!r}?")
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(e, raw) for e in exc.errors())
    if config is not None:
        # The same values as the Lambdas will parse them: Settings' own bounds apply.
        values = {"cluster_name": config.cluster_name, **{k: getattr(config, k) for k in RUNTIME_KEYS}}
        try:
            Settings.model_validate(values)
        except ValidationError as exc:
            problems.extend(_describe(e, raw) for e in exc.errors())
    if problems:
        raise ConfigError(
            "invalid CDK context for eks-rolling:\n  - "
            + "\n  - ".join(problems)
            + "\nSee docs/deploy.md for every key."
        )
    assert config is not None
    return config
