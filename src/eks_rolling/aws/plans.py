"""A large plan's waves in S3 (the bucket the CDK app creates): the state then carries each wave's
key (planning.waves.offloaded), and the wave machine reads its own batches
(aws-sdk:s3:getObject) when it starts."""

from __future__ import annotations

import json
from typing import Any

from eks_rolling.aws.clients import aws_errors
from eks_rolling.models import NodeTarget


class PlanStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3, self.bucket = s3, bucket

    def put_batches(self, key: str, batches: list[list[NodeTarget]]) -> None:
        body = json.dumps([[n.model_dump(mode="json") for n in b] for b in batches], separators=(",", ":"))
        with aws_errors():
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json"
            )

    def batches(self, key: str) -> list[list[NodeTarget]]:
        with aws_errors():
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return [[NodeTarget.model_validate(n) for n in b] for b in json.loads(body)]
