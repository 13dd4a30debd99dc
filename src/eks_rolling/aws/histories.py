"""A roll's execution histories, read from Step Functions: the parent's, then each wave's (the
child executions its RollWave tasks started), for `eks-rolling status` and `eks-rolling report`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from eks_rolling.timeline import Timeline, build_timeline, wave_executions


def execution_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (
        sfn.get_paginator("get_execution_history").paginate(executionArn=arn).build_full_result()["events"]
    )
    return events


def read_timeline(sfn: Any, arn: str, now: datetime | None = None) -> Timeline:
    parent = execution_history(sfn, arn)
    status = str(sfn.describe_execution(executionArn=arn)["status"])
    children = []
    for child in wave_executions(parent):
        try:
            d = sfn.describe_execution(executionArn=child)
        except ClientError:  # scheduled, not started yet
            continue
        children.append((child.rsplit(":", 1)[-1], str(d["status"]), execution_history(sfn, child)))
    return build_timeline(arn, status, parent, children, now=now)
