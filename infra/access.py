"""IAM and EKS access: one role per step, holding exactly the permission groups of `infra.steps`.

Scoping rules (what a security review checks):
- Auto Scaling mutations apply only to groups carrying the opt-in tag
  (`autoscaling:ResourceTag/<key>` = `<value>`), the same tag the runtime checks before a roll;
  the bookkeeping tags may only be `eks-rolling/saved/*`, so the opt-in tag itself cannot be
  written or removed by the roll.
- Describe calls without resource-level permissions (Auto Scaling and EC2 Describe*, ENI
  describe, X-Ray) are the only `*` resources; every other action names its resource.
- `eks:DescribeCluster` is allowed on the one cluster; what the steps may do inside it is the
  Kubernetes RBAC of `deploy/rbac.yaml`, bound to the group of the access entries made here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from eks_rolling.aws.lock import lock_key
from eks_rolling.services.saved import TAG_PREFIX
from eks_rolling.steps import Step

from . import nag
from .steps import Need, needs_of

DESCRIBE_ASG_ACTIONS: Final = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
)
# `resolve:ssm:` AMI aliases in launch templates name AWS's public parameters (EKS optimized AMIs).
SSM_ALIAS_ACTIONS: Final = ("ssm:GetParameter", "ssm:GetParameters")
# Need -> Auto Scaling actions on tagged groups.
ASG_MUTATIONS: Final[Mapping[Need, tuple[str, ...]]] = {
    Need.RECORD_ORIGINALS: ("autoscaling:CreateOrUpdateTags",),
    Need.CLEAR_ORIGINALS: ("autoscaling:DeleteTags",),
    Need.SUSPEND_PROCESSES: ("autoscaling:SuspendProcesses",),
    Need.RESUME_PROCESSES: ("autoscaling:ResumeProcesses",),
    Need.SET_CAPACITY: ("autoscaling:UpdateAutoScalingGroup",),
    Need.TERMINATE_INSTANCE: ("autoscaling:TerminateInstanceInAutoScalingGroup",),
}
TAG_WRITES: Final = frozenset({Need.RECORD_ORIGINALS, Need.CLEAR_ORIGINALS})
# Need -> (lock scope, item actions). Each scope's items are `<scope>#<name>` (aws/lock.py); the
# dynamodb:LeadingKeys condition keeps every step on its own kind of lock.
LOCK_ACTIONS: Final[Mapping[Need, tuple[str, tuple[str, ...]]]] = {
    Need.TAKE_LOCK: ("asg", ("dynamodb:GetItem", "dynamodb:PutItem")),
    Need.RELEASE_LOCK: ("asg", ("dynamodb:DeleteItem",)),
    Need.HOLD_LOCK: ("asg", ("dynamodb:UpdateItem",)),
    Need.REDIS_GROUP_LOCK: ("redis", ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem")),
    Need.RELEASE_REDIS_LOCKS: ("redis", ("dynamodb:DeleteItem", "dynamodb:GetItem")),
}

WHY_ASG_ARN = (
    "Auto Scaling group ARNs contain a generated id and any opted-in group may be rolled; every action "
    "on this ARN pattern is conditioned on autoscaling:ResourceTag/<opt-in key> = <opt-in value>"
)
WHY_ENI = (
    "Lambda creates and deletes the VPC network interfaces of the function; their ids are unknown until "
    "then. CreateNetworkInterface is limited to the configured subnets and security groups"
)
WHY_PUBLIC_PARAMETERS = (
    "read-only GetParameter(s) on AWS's public parameters (/aws/service/*, e.g. the EKS optimized AMI "
    "ids) that launch templates name as resolve:ssm: aliases; they live in AWS's account, any region"
)
WHY_EXECUTIONS = (
    "DescribeExecution on this state machine's executions only (their names are generated per run): "
    "is a lock's holder execution still running?"
)
WHY_WAVES = (
    "StopExecution/DescribeExecution on the wave machine's executions only (each child is named "
    "after its roll at run time): Rollback stops this roll's waves still running"
)
WHY_POINT_BACK = (
    "revert_on_alarm only: UpdateAutoScalingGroup naming a launch template is allowed only if the caller "
    "may RunInstances with it (the group, not this role, launches); its resources are generated per launch"
)
WHY_NO_RESOURCE_LEVEL = (
    "only actions without resource-level permissions use *: ec2:DescribeNetworkInterfaces/DescribeSubnets "
    "(VPC attachment), xray:PutTraceSegments/PutTelemetryRecords (active tracing) and, for steps that "
    "read Auto Scaling groups, Auto Scaling Describe* and EC2 DescribeInstances/DescribeLaunchTemplates/"
    "DescribeLaunchTemplateVersions; all read-only or telemetry"
)


@dataclass(frozen=True)
class AccessScope:
    """The resources the steps act on, and the tag that marks an ASG as ours to roll."""

    cluster_name: str
    lock_table: dynamodb.ITable
    topic: sns.ITopic
    topic_key: kms.IKey
    redis_secret_arns: Sequence[str]
    opt_in_tag_key: str
    opt_in_tag_value: str
    subnet_ids: Sequence[str]
    security_group_ids: Sequence[str]
    kubernetes_group: str
    state_machine_name: str
    hook_function_arns: Sequence[str] = ()
    hook_api_arns: Sequence[str] = ()
    alarm_names: Sequence[str] = ()  # the health gate's CloudWatch alarms
    node_role_arns: Sequence[str] = ()  # revert_on_alarm: the roles a launch template passes


def asg_arn(scope: Construct) -> str:
    return Stack.of(scope).format_arn(
        service="autoscaling",
        resource="autoScalingGroup",
        resource_name="*:autoScalingGroupName/*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def public_parameters_arn(scope: Construct) -> str:
    return f"arn:{Stack.of(scope).partition}:ssm:*::parameter/aws/service/*"


def executions_arn(scope: Construct, state_machine_name: str) -> str:
    return Stack.of(scope).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{state_machine_name}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def wave_machine_name(state_machine_name: str) -> str:
    """The wave (child) state machine's name: infra.workflow names it so."""
    return f"{state_machine_name}-wave"[:80]


def state_machine_arn(scope: Construct, state_machine_name: str) -> str:
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=state_machine_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def alarm_arn(scope: Construct, name: str) -> str:
    return Stack.of(scope).format_arn(
        service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def launch_resource_arns(scope: Construct) -> list[str]:
    """What RunInstances with a launch template touches (template, instance, volumes, network
    interfaces, subnets, security groups in this region and account; public or own AMIs)."""
    stack = Stack.of(scope)
    return [
        f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:*",
        f"arn:{stack.partition}:ec2:{stack.region}::image/*",
    ]


def cluster_arn(scope: Construct, cluster_name: str) -> str:
    return Stack.of(scope).format_arn(service="eks", resource="cluster", resource_name=cluster_name)


def _ec2_arn(scope: Construct, resource: str, name: str) -> str:
    return Stack.of(scope).format_arn(service="ec2", resource=resource, resource_name=name)


def step_statements(
    scope: Construct, needs: frozenset[Need], access: AccessScope
) -> list[iam.PolicyStatement]:
    """The IAM statements of a set of permission groups, each scoped to its resource."""
    out: list[iam.PolicyStatement] = []
    if Need.DESCRIBE_ASG in needs:
        out.append(
            iam.PolicyStatement(
                sid="DescribeAutoScaling", actions=list(DESCRIBE_ASG_ACTIONS), resources=["*"]
            )
        )
        out.append(
            iam.PolicyStatement(
                sid="ResolveAmiAliases",
                actions=list(SSM_ALIAS_ACTIONS),
                resources=[public_parameters_arn(scope)],
            )
        )
    if Need.DESCRIBE_EXECUTIONS in needs:
        out.append(
            iam.PolicyStatement(
                sid="IsTheLockHolderRunning",
                actions=["states:DescribeExecution"],
                resources=[executions_arn(scope, access.state_machine_name)],
            )
        )
    if Need.STOP_WAVES in needs:
        waves = wave_machine_name(access.state_machine_name)
        out.append(
            iam.PolicyStatement(
                sid="ListWaves",
                actions=["states:ListExecutions"],
                resources=[state_machine_arn(scope, waves)],
            )
        )
        out.append(
            iam.PolicyStatement(
                sid="StopThisRollsWaves",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions_arn(scope, waves)],
            )
        )
    mutations = sorted(a for n in needs - TAG_WRITES for a in ASG_MUTATIONS.get(n, ()))
    tagged = {"StringEquals": {f"autoscaling:ResourceTag/{access.opt_in_tag_key}": access.opt_in_tag_value}}
    if mutations:
        out.append(
            iam.PolicyStatement(
                sid="MutateOptedInGroups", actions=mutations, resources=[asg_arn(scope)], conditions=tagged
            )
        )
    tag_actions = sorted(a for n in needs & TAG_WRITES for a in ASG_MUTATIONS[n])
    if tag_actions:
        out.append(
            iam.PolicyStatement(
                sid="BookkeepingTagsOnOptedInGroups",
                actions=tag_actions,
                resources=[asg_arn(scope)],
                conditions={
                    **tagged,
                    "ForAllValues:StringLike": {"aws:TagKeys": [f"{TAG_PREFIX}*"]},
                    "Null": {"aws:TagKeys": "false"},
                },
            )
        )
    if Need.KUBERNETES in needs:
        out.append(
            iam.PolicyStatement(
                sid="FindTheCluster",
                actions=["eks:DescribeCluster"],
                resources=[cluster_arn(scope, access.cluster_name)],
            )
        )
    lock_scopes: dict[str, set[str]] = {}
    for need, (lock_scope, actions) in LOCK_ACTIONS.items():
        if need in needs:
            lock_scopes.setdefault(lock_scope, set()).update(actions)
    for lock_scope, lock_actions in sorted(lock_scopes.items()):
        leading = lock_key("*", lock_scope)
        out.append(
            iam.PolicyStatement(
                sid=f"{lock_scope.capitalize()}LockItems",
                actions=sorted(lock_actions),
                resources=[access.lock_table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [leading]}},
            )
        )
    if Need.NOTIFY in needs:
        out.append(
            iam.PolicyStatement(sid="Notify", actions=["sns:Publish"], resources=[access.topic.topic_arn])
        )
        out.append(
            iam.PolicyStatement(
                sid="NotifyEncrypted",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[access.topic_key.key_arn],
            )
        )
    if Need.CALL_HOOKS in needs and access.hook_function_arns:
        out.append(
            iam.PolicyStatement(
                sid="InvokeHookFunctions",
                actions=["lambda:InvokeFunction"],
                resources=list(access.hook_function_arns),
            )
        )
    if Need.CALL_HOOKS in needs and access.hook_api_arns:
        out.append(
            iam.PolicyStatement(
                sid="InvokeHookApis", actions=["execute-api:Invoke"], resources=list(access.hook_api_arns)
            )
        )
    if Need.READ_ALARMS in needs and access.alarm_names:
        out.append(
            iam.PolicyStatement(
                sid="ReadHealthAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm_arn(scope, n) for n in access.alarm_names],
            )
        )
    if Need.POINT_BACK in needs and access.node_role_arns:
        out += [
            iam.PolicyStatement(
                sid="UseTheLaunchTemplate",
                actions=["ec2:RunInstances", "ec2:CreateTags"],
                resources=launch_resource_arns(scope),
            ),
            iam.PolicyStatement(
                sid="PassNodeRoles",
                actions=["iam:PassRole"],
                resources=list(access.node_role_arns),
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            ),
        ]
    if Need.READ_REDIS_SECRETS in needs and access.redis_secret_arns:
        out.append(
            iam.PolicyStatement(
                sid="ReadRedisCredentials",
                actions=["secretsmanager:GetSecretValue"],
                resources=list(access.redis_secret_arns),
            )
        )
    return out


def vpc_statements(scope: Construct, access: AccessScope) -> list[iam.PolicyStatement]:
    """What Lambda needs to attach the function to the VPC (AWSLambdaVPCAccessExecutionRole,
    scoped to the configured subnets and security groups)."""
    eni = _ec2_arn(scope, "network-interface", "*")
    return [
        iam.PolicyStatement(
            sid="CreateFunctionNetworkInterfaces",
            actions=["ec2:CreateNetworkInterface"],
            resources=[
                eni,
                *(_ec2_arn(scope, "subnet", s) for s in access.subnet_ids),
                *(_ec2_arn(scope, "security-group", g) for g in access.security_group_ids),
            ],
        ),
        iam.PolicyStatement(
            sid="ManageFunctionNetworkInterfaces",
            actions=[
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources=[eni],
        ),
        iam.PolicyStatement(
            sid="DescribeNetworking",
            actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            resources=["*"],
        ),
    ]


class StepAccess(Construct):
    """One role per step (`roles[step.id]`) and, for the steps that use Kubernetes, an EKS access
    entry binding the role to `kubernetes_group` (username `eks-rolling:<step id>` in audit logs)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, steps: Sequence[Step], access: AccessScope
    ) -> None:
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.Role] = {}
        self.access_entries: dict[str, eks.CfnAccessEntry] = {}
        for step in steps:
            needs = needs_of(step)
            own = step_statements(self, needs, access)
            role = iam.Role(
                self,
                f"{step.state}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"eks-rolling {step.id}: {', '.join(sorted(needs))}",
                inline_policies={
                    "vpc-attachment": iam.PolicyDocument(statements=vpc_statements(self, access)),
                    # a hook step with no hook_functions has nothing to allow: no empty document
                    **({"step": iam.PolicyDocument(statements=own)} if own else {}),
                },
            )
            self.roles[step.id] = role
            self._acknowledge(role, needs, access)
            if Need.KUBERNETES in needs:
                self.access_entries[step.id] = eks.CfnAccessEntry(
                    self,
                    f"{step.state}AccessEntry",
                    cluster_name=access.cluster_name,
                    principal_arn=role.role_arn,
                    type="STANDARD",
                    kubernetes_groups=[access.kubernetes_group],
                    username=f"eks-rolling:{step.id}",
                )

    def _acknowledge(self, role: iam.Role, needs: frozenset[Need], access: AccessScope) -> None:
        nag.wildcard(role, "*", WHY_NO_RESOURCE_LEVEL)
        if Need.DESCRIBE_ASG in needs:
            nag.wildcard(role, public_parameters_arn(self), WHY_PUBLIC_PARAMETERS)
        if Need.DESCRIBE_EXECUTIONS in needs:
            nag.wildcard(role, executions_arn(self, access.state_machine_name), WHY_EXECUTIONS)
        if Need.STOP_WAVES in needs:
            nag.wildcard(role, executions_arn(self, wave_machine_name(access.state_machine_name)), WHY_WAVES)
        nag.wildcard(role, _ec2_arn(self, "network-interface", "*"), WHY_ENI)
        if needs & set(ASG_MUTATIONS):
            nag.wildcard(role, asg_arn(self), WHY_ASG_ARN)
        if Need.POINT_BACK in needs and access.node_role_arns:
            for arn in launch_resource_arns(self):
                nag.wildcard(role, arn, WHY_POINT_BACK)
