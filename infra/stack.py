"""The eks-rolling stack: composes the constructs and does the wiring between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from eks_rolling.settings import Settings
from eks_rolling.steps import STEPS

from .access import AccessScope, StepAccess
from .config import StackConfig
from .lock import LockTable
from .monitoring import Monitoring
from .notifications import Notifications
from .packaging import LambdaPackage
from .plans import PlansBucket
from .steps import Need, check_registry, steps_needing
from .trail import Trail
from .trigger import Trigger
from .workflow import ASL_PATH, LambdaNetwork, Workflow, load_definition

SERVICE: Final = "eks-rolling"
# Settings fields the stack sets that eks_rolling.settings.Settings does not declare yet.
PENDING_SETTINGS: Final[frozenset[str]] = frozenset()

# The steps that use the plans bucket (eks_rolling.services.plans).
PLAN_STEPS: Final = ("plan_roll", "taint_old_nodes", "taint_remaining_nodes", "revert_target")

RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS, 150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS, 2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}  # fmt: skip


class StackError(ValueError):
    """The configuration and the state machine definition cannot work together."""


def check_environment(env: dict[str, str]) -> None:
    """Every EKS_ROLLING_* variable must be a Settings field, or the runtime would ignore it."""
    fields = set(Settings.model_fields) | PENDING_SETTINGS
    unknown = sorted(k for k in env if k.startswith("EKS_ROLLING_") and k[12:].lower() not in fields)
    if unknown:
        raise StackError(f"environment variables without a Settings field: {unknown}")


class EksRollingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        package: LambdaPackage,
        definition_path: Path = ASL_PATH,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"eks-rolling: rolling replacement of the self-managed nodes of EKS cluster "
            f"{config.cluster_name}",
            **kwargs,
        )
        check_registry(STEPS)
        definition = load_definition(definition_path, STEPS)
        if config.lock_ttl_s < definition.timeout_s:
            raise StackError(
                f"lock_ttl_s ({config.lock_ttl_s}) is shorter than the state machine's TimeoutSeconds "
                f"({definition.timeout_s}): a lock could expire in the middle of a roll"
            )
        name = f"{SERVICE}-{config.cluster_name}"[:80]
        network = LambdaNetwork.imported(
            self,
            vpc_id=config.vpc_id,
            subnet_ids=config.subnet_ids,
            security_group_ids=config.security_group_ids,
        )
        notifications = Notifications(
            self,
            "Notifications",
            display_name=name,
            email=config.notify_email,
            existing_topic_arn=config.notify_topic_arn,
        )
        lock = LockTable(self, "Lock")
        plans = PlansBucket(self, "Plans")
        access = StepAccess(
            self,
            "Access",
            steps=STEPS,
            access=AccessScope(
                cluster_name=config.cluster_name,
                lock_table=lock.table,
                topic=notifications.topic,
                topic_key=notifications.key,
                redis_secret_arns=config.redis_secret_arns,
                opt_in_tag_key=config.opt_in_tag_key,
                opt_in_tag_value=config.opt_in_tag_value,
                subnet_ids=config.subnet_ids,
                security_group_ids=config.security_group_ids,
                kubernetes_group=config.kubernetes_group,
                state_machine_name=name,
                hook_function_arns=config.hook_functions,
                hook_api_arns=config.hook_api_arns,
                alarm_names=config.alarm_names(),
                node_role_arns=config.node_role_arns if config.revert_on_alarm else (),
            ),
        )

        environment = {
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            "POWERTOOLS_LOG_LEVEL": config.log_level,
            "EKS_ROLLING_REGION": Aws.REGION,
            "EKS_ROLLING_LOCK_TABLE": lock.table.table_name,
            **config.settings_environment(),
        }
        # Only the steps allowed to publish learn where to.
        publishers = {
            s.id: {"EKS_ROLLING_NOTIFY_TOPIC_ARN": notifications.topic.topic_arn}
            for s in steps_needing(Need.NOTIFY)
        }
        # PlanRoll stores a large plan's waves; TaintOldNodes reads them back.
        step_environment = {s: dict(env) for s, env in publishers.items()}
        for step_id in PLAN_STEPS:
            step_environment.setdefault(step_id, {})["EKS_ROLLING_PLAN_BUCKET"] = plans.bucket.bucket_name
        check_environment({k: v for env in (environment, *step_environment.values()) for k, v in env.items()})
        workflow = Workflow(
            self,
            "Workflow",
            name=name,
            steps=STEPS,
            definition=definition,
            package=package,
            network=network,
            roles=access.roles,
            environment=environment,
            step_environment=step_environment,
            log_retention=RETENTION[config.log_retention_days],
            reserved_concurrency=config.reserved_concurrency,
        )
        for step in STEPS:
            workflow.log_groups[step.id].grant_write(access.roles[step.id])
        plans.grant_write(access.roles["plan_roll"])
        plans.grant_read(access.roles["taint_old_nodes"])
        plans.grant_read(access.roles["taint_remaining_nodes"])
        plans.grant_write(access.roles["revert_target"])  # a large revert plan's waves, as PlanRoll's
        plans.grant_read(workflow.wave_state_machine.role)  # ReadWave (aws-sdk:s3:getObject)

        notifications.notify_on_status_changes(workflow.state_machine)
        trigger = Trigger(
            self,
            "Trigger",
            state_machine=workflow.state_machine,
            drift_check_schedule=config.drift_check_schedule,
        )
        self.trail = Trail(self, "Trail") if config.create_trail else None
        Monitoring(
            self,
            "Monitoring",
            name=name,
            state_machine=workflow.state_machine,
            functions=workflow.functions,
            steps=STEPS,
            dead_letter_queue=trigger.dead_letter_queue,
            topics=notifications.destinations,
            stalled_roll_minutes=config.stalled_roll_minutes,
        )

        self.workflow = workflow
        self.access = access
        self.trigger = trigger
        self.notifications = notifications
        CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        CfnOutput(self, "NotificationTopicArn", value=notifications.topic.topic_arn)
        CfnOutput(self, "LockTableName", value=lock.table.table_name)
        CfnOutput(self, "PlansBucketName", value=plans.bucket.bucket_name)
        CfnOutput(self, "TriggerDeadLetterQueueUrl", value=trigger.dead_letter_queue.queue_url)
        CfnOutput(self, "KubernetesGroup", value=config.kubernetes_group)
