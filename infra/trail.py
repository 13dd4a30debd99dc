"""A CloudTrail trail for accounts that have none (context `create_trail`).

EventBridge delivers "AWS API Call via CloudTrail" events only when a trail with logging enabled
records the region's write management events (EventBridge user guide, "Events from AWS services
delivered via AWS CloudTrail"). Without one, no launch template change ever starts a roll, silently.
Most organisations already have an organisation or account trail: then leave `create_trail` off.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .buckets import private_bucket

LOG_EXPIRY = Duration.days(365)


class Trail(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self,
            "Bucket",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=LOG_EXPIRY, noncurrent_version_expiration=LOG_EXPIRY)
            ],
            # CloudTrail logs are evidence: kept when the stack goes (the name is generated, so a
            # retained bucket never blocks the next create).
            removal_policy=RemovalPolicy.RETAIN,
            no_access_logs_because="this bucket only receives CloudTrail log files, written by the "
            "trail of this stack; CloudTrail validates each file (log file validation) and the bucket "
            "policy allows only cloudtrail.amazonaws.com to write",
        )
        # Write management events of this region: what the triggers match. Read events would
        # cost without starting anything.
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.bucket,
            is_multi_region_trail=False,
            include_global_service_events=False,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            enable_file_validation=True,
        )
