"""The stack's S3 buckets share one baseline: SSE-S3, all public access blocked, TLS only, and
no server access logs (cdk-nag AwsSolutions-S1, acknowledged with the bucket's own reason)."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_s3 as s3
from constructs import Construct

from . import nag


def private_bucket(
    scope: Construct, construct_id: str, *, no_access_logs_because: str, **props: Any
) -> s3.Bucket:
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        **props,
    )
    nag.acknowledge(bucket, "AwsSolutions-S1", no_access_logs_because)
    return bucket
