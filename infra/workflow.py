"""The Lambdas (one per step of `eks_rolling.steps.STEPS`) and the state machine, from the ASL file.

The definition is `statemachine/rolling_upgrade.asl.json` as written: `from_string` keeps it
inline in the template (reviewable, and testable after substitution), each `${<State>FunctionArn}`
is substituted with its function's ARN, and invoke permissions are granted explicitly because
nothing can be inferred from a string definition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from eks_rolling.steps import LAMBDA_TIMEOUT_S, Step

from . import nag
from .access import wave_machine_name
from .packaging import MEASURED_COLD_IMPORT_CPU_S, ROOT, LambdaPackage, memory_for

ASL_PATH: Final = ROOT / "statemachine" / "rolling_upgrade.asl.json"
# Each wave of a roll runs as a child execution of this machine (startExecution.sync:2).
WAVE_ASL_PATH: Final = ROOT / "statemachine" / "roll_wave.asl.json"
WAVE_PLACEHOLDER: Final = "RollWaveStateMachineArn"
# Step Functions' managed rule behind every `.sync` integration (it learns of the child's end).
SYNC_RULE: Final = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
PLACEHOLDER: Final = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

RUNTIME: Final = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE: Final = lambda_.Architecture.X86_64
TIMEOUT: Final = Duration.seconds(LAMBDA_TIMEOUT_S)
# Sized from the measured cold import (infra/packaging.py, bench/lambda_cold_start.py): 1024 MB.
MEMORY_MB: Final = memory_for(MEASURED_COLD_IMPORT_CPU_S)


class DefinitionError(ValueError):
    """The ASL file and the step registry disagree, or the definition lacks its timeout."""


@dataclass(frozen=True)
class Definition:
    text: str
    timeout_s: int
    wave_text: str = ""

    def placeholders(self, text: str) -> set[str]:
        return set(PLACEHOLDER.findall(text))


def load_definition(path: Path, steps: Sequence[Step], wave_path: Path = WAVE_ASL_PATH) -> Definition:
    """The ASL texts (the roll and its wave child), checked against the steps: every placeholder
    is a step's (or the wave machine's), every step is used, and both executions have a
    TimeoutSeconds backstop."""
    text = path.read_text()
    wave_text = wave_path.read_text()
    try:
        body = json.loads(text)
        wave = json.loads(wave_text)
    except ValueError as exc:
        raise DefinitionError(f"{path.name} or {wave_path.name} is not valid JSON: {exc}") from exc
    found = set(PLACEHOLDER.findall(text)) | set(PLACEHOLDER.findall(wave_text))
    expected = {s.placeholder for s in steps} | {WAVE_PLACEHOLDER}
    problems = []
    if WAVE_PLACEHOLDER not in PLACEHOLDER.findall(text):
        problems.append(f"{path.name} never starts a wave (${{{WAVE_PLACEHOLDER}}})")
    if not isinstance(wave.get("TimeoutSeconds"), int) or wave["TimeoutSeconds"] <= 0:
        problems.append(f"{wave_path.name}: no top-level TimeoutSeconds")
    if found - expected:
        problems.append(f"placeholders without a step in eks_rolling.steps: {sorted(found - expected)}")
    if expected - found:
        problems.append(f"steps never used by the state machine: {sorted(expected - found)}")
    timeout = body.get("TimeoutSeconds")
    if not isinstance(timeout, int) or timeout <= 0:
        problems.append("no top-level TimeoutSeconds: every execution needs a deadline (the backstop)")
    if problems:
        raise DefinitionError(f"{path.name}: " + "; ".join(problems))
    return Definition(text=text, timeout_s=int(timeout), wave_text=wave_text)


# Logs are the audit trail: they outlive the stack (Retain on delete and on replacement), yet a
# retained group must never block the next create ("already exists" after a destroy + redeploy or
# a failed first create). So each name carries the first block of the stack's own id, new for every
# stack created, and a failed create deletes what it made (RetainExceptOnCreate).
LOG_REMOVAL: Final = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE


def stack_instance_suffix() -> str:
    """`1a2b3c4d` of arn:aws:cloudformation:<region>:<account>:stack/<name>/1a2b3c4d-...: unique per
    stack creation, stable across updates."""
    return Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))


@dataclass(frozen=True)
class LambdaNetwork:
    vpc: ec2.IVpc
    subnets: Sequence[ec2.ISubnet]
    security_groups: Sequence[ec2.ISecurityGroup]

    @classmethod
    def imported(
        cls, scope: Construct, *, vpc_id: str, subnet_ids: Sequence[str], security_group_ids: Sequence[str]
    ) -> LambdaNetwork:
        """Existing VPC, subnets and security groups by id: no lookups, no credentials at synth."""
        vpc = ec2.Vpc.from_vpc_attributes(scope, "Vpc", vpc_id=vpc_id, availability_zones=Fn.get_azs())
        subnets = [ec2.Subnet.from_subnet_id(scope, f"Subnet{i}", s) for i, s in enumerate(subnet_ids)]
        groups = [
            ec2.SecurityGroup.from_security_group_id(scope, f"SecurityGroup{i}", g, mutable=False)
            for i, g in enumerate(security_group_ids)
        ]
        return cls(vpc=vpc, subnets=subnets, security_groups=groups)


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        steps: Sequence[Step],
        definition: Definition,
        package: LambdaPackage,
        network: LambdaNetwork,
        roles: Mapping[str, iam.IRole],
        environment: Mapping[str, str],
        step_environment: Mapping[str, Mapping[str, str]],
        log_retention: logs.RetentionDays,
        reserved_concurrency: int | None,
    ) -> None:
        super().__init__(scope, construct_id)
        layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(package.layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="eks-rolling: pinned dependencies (requirements-lambda.txt)",
        )
        code = lambda_.Code.from_asset(str(package.code_dir))
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        suffix = stack_instance_suffix()
        for step in steps:
            log_group = logs.LogGroup(
                self,
                f"{step.state}Logs",
                log_group_name=f"/{name}/{suffix}/lambda/{step.id}",
                retention=log_retention,
                removal_policy=LOG_REMOVAL,
            )
            fn = lambda_.Function(
                self,
                f"{step.state}Function",
                description=f"{name}: {step.state}",
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=step.handler,
                code=code,
                layers=[layer],
                role=roles[step.id],
                vpc=network.vpc,
                vpc_subnets=ec2.SubnetSelection(subnets=list(network.subnets)),
                security_groups=list(network.security_groups),
                timeout=TIMEOUT,
                memory_size=MEMORY_MB,
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                reserved_concurrent_executions=reserved_concurrency,
                environment={**environment, **step_environment.get(step.id, {})},
            )
            nag.acknowledge(
                fn,
                "AwsSolutions-L1",
                "pinned to python3.12 on purpose: the dependency layer carries compiled cp312 wheels "
                "(pydantic-core) and CPython 3.12 bytecode built for exactly this runtime; move both together",
            )
            self.functions[step.id] = fn
            self.log_groups[step.id] = log_group

        arns = {s.placeholder: self.functions[s.id].function_arn for s in steps}
        self.wave_name = wave_machine_name(name)
        self.wave_log_group = logs.LogGroup(
            self,
            "WaveStateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{name}-wave-{suffix}",
            retention=log_retention,
            removal_policy=LOG_REMOVAL,
        )
        self.wave_state_machine = sfn.StateMachine(
            self,
            "WaveStateMachine",
            state_machine_name=self.wave_name,
            comment=f"{name}: one wave of a roll, started by {name} (startExecution.sync:2)",
            definition_body=sfn.DefinitionBody.from_string(definition.wave_text),
            definition_substitutions={
                k: v for k, v in arns.items() if k in definition.placeholders(definition.wave_text)
            },
            logs=sfn.LogOptions(
                destination=self.wave_log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        self.log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{name}-{suffix}",
            retention=log_retention,
            removal_policy=LOG_REMOVAL,
        )
        parent_arns = {k: v for k, v in arns.items() if k in definition.placeholders(definition.text)}
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            comment=f"{name}: zero-downtime rolling replacement of self-managed EKS nodes",
            definition_body=sfn.DefinitionBody.from_string(definition.text),
            definition_substitutions={
                **parent_arns,
                WAVE_PLACEHOLDER: self.wave_state_machine.state_machine_arn,
            },
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        for step in steps:
            fn = self.functions[step.id]
            if step.placeholder in parent_arns:
                fn.grant_invoke(self.state_machine)
            if step.placeholder in definition.placeholders(definition.wave_text):
                fn.grant_invoke(self.wave_state_machine)
        self._grant_waves()
        self._acknowledge()

    def _grant_waves(self) -> None:
        """startExecution.sync:2: start the wave machine's executions, follow and stop them, and
        the managed EventBridge rule through which Step Functions learns that a child ended."""
        wave = self.wave_state_machine
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[wave.state_machine_arn])
        )
        # By name (fixed at creation): the executions of the wave machine only.
        self.wave_executions = executions = (
            f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:{self.wave_name}:*"
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions]
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{SYNC_RULE}"],
            )
        )

    def _acknowledge(self) -> None:
        sm = self.state_machine
        nag.wildcard(
            self.wave_state_machine.role,
            "*",
            "Step Functions log delivery (logs:CreateLogDelivery, ...DescribeLogGroups) and X-Ray "
            "(PutTraceSegments, GetSamplingRules) do not support resource-level permissions; "
            "CDK generates exactly these for logging and tracing",
        )
        nag.wildcard(
            sm.role,
            self.wave_executions,
            "states:DescribeExecution/StopExecution on the executions of the wave machine only "
            "(startExecution.sync:2 follows and, when the parent stops, stops its child)",
        )
        nag.wildcard(
            sm.role,
            "*",
            "Step Functions log delivery (logs:CreateLogDelivery, ...DescribeLogGroups) and X-Ray "
            "(PutTraceSegments, GetSamplingRules) do not support resource-level permissions; "
            "CDK generates exactly these for logging and tracing",
        )
        for role in (sm.role, self.wave_state_machine.role):
            for fn in self.functions.values():
                nag.wildcard(
                    role,
                    f"{fn.function_arn}:*",
                    "lambda:InvokeFunction on this function's versions and aliases (ARN:*), as "
                    "grant_invoke emits; the function itself is named",
                )
