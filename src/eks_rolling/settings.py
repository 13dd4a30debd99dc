"""Typed configuration, read from the environment when a step runs (never at import).

Every field is an `EKS_ROLLING_<NAME>` environment variable; CDK sets the same names on each
Lambda, the sandbox sets them in-process.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import SettingsError
from .labels import TAG_OPT_IN, TAINT_RETIRING
from .planning.hooks import parse_hooks
from .planning.selectors import parse_selector
from .planning.windows import parse_windows

PREFIX = "EKS_ROLLING_"
# The local sandbox's own variables share the prefix; they are not runtime settings.
SANDBOX_PREFIX = PREFIX + "SANDBOX_"
# The `eks-rolling start|status` default state machine (a running sandbox's env file sets it):
# the command's, not a Lambda setting.
STATE_MACHINE_ARN_VARIABLE = PREFIX + "STATE_MACHINE_ARN"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EKS_ROLLING_", frozen=True, extra="ignore")

    # --- where things are ---------------------------------------------------------------------
    region: str = Field("us-east-1", description="AWS region of the cluster and its ASGs")
    cluster_name: str | None = Field(None, description="EKS cluster; else read from the ASG's tags")
    aws_endpoint_url: str | None = Field(None, description="Override for every AWS API (sandbox)")
    kube_api_url: str | None = Field(None, description="Override for the EKS endpoint (sandbox)")
    kube_ca_file: str | None = Field(None, description="CA bundle for kube_api_url")

    # --- what is ours -------------------------------------------------------------------------
    opt_in_tag_key: str = TAG_OPT_IN
    opt_in_tag_value: str = "true"
    taint_key: str = TAINT_RETIRING
    lock_table: str = "eks-rolling-locks"
    notify_topic_arn: str | None = Field(
        None, description="SNS topic for node-done, blocked and failed notices"
    )
    lock_ttl_s: int = Field(24 * 3600, ge=60)

    # --- cluster-autoscaler --------------------------------------------------------------------
    autoscaler_namespace: str = "kube-system"
    autoscaler_deployment: str = "cluster-autoscaler"

    # --- how the roll behaves ------------------------------------------------------------------
    batch_size: int = Field(1, ge=1, le=50, description="Old nodes replaced at once")
    raise_max_size: bool = Field(True, description="Raise MaxSize temporarily when surge needs it")
    suspend_processes: tuple[str, ...] = ("AZRebalance", "AlarmNotification", "ScheduledActions")
    delete_emptydir_data: bool = Field(False, description="Allow evicting pods with emptyDir volumes")
    deregistration_delay_s: int = Field(30, ge=0, description="Wait after excluding a node from LBs")
    max_nodes_per_wave: int = Field(
        0, ge=0, description="Cap on old nodes per child execution (wave); 0: sized from the history budget"
    )
    plan_bucket: str = Field("", description="S3 bucket for plans too large for the state (the CDK app's)")
    inline_plan_bytes: int = Field(
        32 * 1024, ge=0, description="A plan state larger than this keeps its waves' batches in plan_bucket"
    )
    wave_concurrency: int = Field(
        1,
        ge=1,
        le=40,
        description="Waves of one ASG rolled at once when the surge room holds every old node's "
        "replacement and no canary, health bake, zone order, window or Redis move needs them in turn",
    )
    asg_concurrency: int = Field(
        1, ge=1, le=40, description="ASGs of one trigger rolled at once, each with its own lock and waves"
    )

    # --- scope and sequencing (each also an ASG tag: labels.TAG_*, the tag wins) -------------------
    node_selector: str = Field("", description="Roll only old nodes matching this label selector")
    instance_ids: tuple[str, ...] = Field((), description="Roll only these old instances")
    exclude_selector: str = Field("", description="Never roll old nodes matching this label selector")
    az_sequential: bool = Field(False, description="Finish one availability zone before the next")

    # --- maintenance windows, pause / resume / abort (checked before every wave: CheckGate) --------
    maintenance_windows: str = Field(
        "", description="When new waves may start: 'DAYS HH:MM/DURATION ZONE; ...' (empty: any time)"
    )
    # The roll's execution ends at 24 h (the ASL's TimeoutSeconds, where no Catch runs): a pause
    # must fail, and roll back, well before that.
    pause_timeout_s: int = Field(
        6 * 3600,
        ge=60,
        le=20 * 3600,
        description="A roll paused longer fails (PauseTimeoutError) and rolls back",
    )
    pause_reminder_s: int = Field(3600, ge=60, description="How often a paused roll reminds people")
    gate_poll_s: int = Field(
        300, ge=1, description="Longest wait between checks of a paused roll or a closed window"
    )

    # --- canary wave and health gate (each also an ASG tag: labels.TAG_*, the tag wins) -----------
    canary_per_az: int = Field(
        1, ge=0, le=50, description="Old nodes per availability zone in the first wave (0: no canary wave)"
    )
    health_alarms: str = Field(
        "", description="CloudWatch alarm names (comma-separated) that must stay OK after every wave"
    )
    health_bake_s: int = Field(
        300, ge=0, le=6 * 3600, description="How long the alarms must stay OK after a wave before the next"
    )
    health_poll_s: int = Field(
        60, ge=1, description="Longest wait between two checks of the alarms while a wave bakes"
    )
    revert_on_alarm: bool = Field(
        False, description="On HealthAlarmError, point the ASG back at its previous launch template version"
    )

    # --- do-not-disrupt pods --------------------------------------------------------------------
    do_not_disrupt_timeout_s: int = Field(
        3600, ge=0, description="How long a node waits for its do-not-disrupt pods, unless they say"
    )
    do_not_disrupt_on_deadline: Literal["fail", "evict"] = Field(
        "fail", description="At the deadline: stop the roll (DoNotDisruptDeadlineError) or evict"
    )
    do_not_disrupt_poll_cap_s: int = Field(
        300, ge=1, description="Longest wait between checks of a do-not-disrupt pod (the wait doubles)"
    )

    # --- per-node hooks (each list also an ASG tag: labels.TAG_*_HOOKS, the tag wins) -------------
    pre_drain_hooks: str = Field(
        "", description="Lambda ARNs / https:// URLs called for each old node before its drain"
    )
    post_replace_hooks: str = Field(
        "", description="Lambda ARNs / https:// URLs called after each old node is replaced"
    )
    hook_timeout_s: float = Field(30.0, gt=0, le=120, description="Each call of a hook")
    hook_attempts: int = Field(3, ge=1, le=10, description="Calls of a failing hook before the roll stops")
    # Every attempt and pause of one step's hooks fit in its Lambda's 300 s (steps.LAMBDA_TIMEOUT_S).
    hook_deadline_s: float = Field(
        120.0, gt=0, le=240, description="All attempts of one hook for one node, pauses included"
    )
    hook_backoff_s: float = Field(2.0, ge=0, description="Pause after a failed call (doubles)")
    hook_backoff_cap_s: float = Field(30.0, ge=0, description="Longest pause between calls of a hook")
    hook_signing_service: str = Field(
        "execute-api", min_length=1, description="SigV4 service name for https:// hooks"
    )
    hook_ca_file: str | None = Field(None, description="CA bundle for https:// hooks (else the system's)")

    # --- Redis --------------------------------------------------------------------------------------
    redis_enabled: bool = Field(True, description="Move managed Redis pods with the Redis steps")
    redis_failback: bool = Field(True, description="End with the master on its original pod")
    redis_pause_ms: int = Field(5000, ge=500, description="CLIENT PAUSE budget for one switchover")
    redis_phase_timeout_s: int = Field(300, ge=5, description="Deadline for each phase of a Redis move")
    redis_socket_timeout_s: float = Field(2.0, gt=0)
    redis_cleanup_wait_s: int = Field(30, ge=0, description="Cleanup's wait for a Redis Cluster failback")

    # --- deadlines and polling (seconds) -------------------------------------------------------
    poll_interval_s: int = Field(10, ge=1)
    poll_cap_s: int = Field(
        60,
        ge=1,
        description="Longest wait between checks of a wait loop that sees no change (the wait doubles "
        "from poll_interval_s and drops back to it on progress; = poll_interval_s polls at a fixed interval)",
    )
    new_nodes_timeout_s: int = Field(900, ge=1)
    drain_timeout_s: int = Field(900, ge=1)
    owners_ready_timeout_s: int = Field(600, ge=1)
    eviction_backoff_base_s: float = Field(5.0, gt=0)
    eviction_backoff_cap_s: float = Field(60.0, gt=0)
    # A drain held only by PDBs, and an owners' wait, check again within their invocation every
    # inline_poll_s (kubectl drain's pace), up to inline_wait_s, before the state machine's next
    # round (services.drain.in_call): a PDB chain moves when its budget frees, not a back-off
    # later, at a few history events per minute.
    # 60: one Task a minute while a drain or an owners' wait is held, far under the Lambda's 300 s.
    # (It was 0 for a day while two 300-node rolls counted PDB violations: they were the sandbox's
    # moto serving concurrent Auto Scaling calls non-atomically, not these waits; README, Benchmarks.)
    inline_wait_s: int = Field(60, ge=0, le=240)
    inline_poll_s: int = Field(5, ge=1, le=60)
    api_timeout_s: float = Field(20.0, gt=0, description="Per-request timeout to the Kubernetes API")

    @field_validator("node_selector", "exclude_selector")
    @classmethod
    def _selector(cls, v: str) -> str:
        parse_selector(v)  # SelectorError is a ValueError: load_settings names the variable
        return v

    @field_validator("pre_drain_hooks", "post_replace_hooks")
    @classmethod
    def _hooks(cls, v: str) -> str:
        parse_hooks(v)  # HookError is a ValueError: load_settings names the variable
        return v

    @field_validator("maintenance_windows")
    @classmethod
    def _windows(cls, v: str) -> str:
        parse_windows(v)  # WindowError is a ValueError: load_settings names the variable
        return v


def known_variables() -> set[str]:
    return {PREFIX + name.upper() for name in Settings.model_fields}


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """A misspelt `EKS_ROLLING_*` variable would be silently ignored (and its default used):
        SettingsError names it, with the closest real name. Sandbox variables and the command's
    state machine are exempt."""
    env = os.environ if environ is None else environ
    known = known_variables()
    unknown = sorted(
        k
        for k in env
        if k.startswith(PREFIX)
        and not k.startswith(SANDBOX_PREFIX)
        and k not in known
        and k != STATE_MACHINE_ARN_VARIABLE
    )
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, known, n=1)
            hints.append(f"{k} (did you mean {close[0]}?)" if close else k)
        raise SettingsError(f"unknown eks-rolling setting(s): {', '.join(hints)}")


def load_settings() -> Settings:
    """Settings from the environment; SettingsError naming each bad variable instead of
    pydantic's ValidationError (whose name Step Functions would not know)."""
    try:
        return Settings()
    except ValidationError as exc:
        bad = [f"{PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()[:5]]
        raise SettingsError(f"invalid eks-rolling setting(s): {'; '.join(bad)}") from None
