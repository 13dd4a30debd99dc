"""The plans bucket (`eks_rolling.services.plans`): a large plan's waves, one object per wave, so
that no state of a roll grows with its size. PlanRoll writes, TaintOldNodes and the wave machine
read, each under the `waves/` prefix only."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eks_rolling.planning.waves import STORE_PREFIX

from . import nag
from .buckets import private_bucket

# Longer than any roll (TimeoutSeconds 24 h), short enough not to keep old plans around: the
# execution history (90 days) and the logs are the audit trail, not these copies.
EXPIRE_DAYS = 7


class PlansBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self,
            "Bucket",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(EXPIRE_DAYS))],
            # Transient copies of what the executions carry: a deleted stack leaves nothing behind.
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=False,
            no_access_logs_because="holds only transient copies of plans (expire after 7 days); every "
            "read and write is already in the executions' histories and the Lambdas' logs",
        )
        self.objects = self.bucket.arn_for_objects(f"{STORE_PREFIX}/*")

    def grant_write(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[self.objects]))
        self._wildcard(role)

    def grant_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.objects]))
        self._wildcard(role)

    def _wildcard(self, role: iam.IRole) -> None:
        nag.wildcard(
            role,
            self.objects,
            "the plans bucket's waves/ prefix: one object per wave, named after executions not yet started",
        )
