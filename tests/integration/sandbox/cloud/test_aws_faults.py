"""AWS faults injected in front of moto reach boto3 as AWS's own errors, in each wire protocol,
for the calls chosen and no others."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from eks_rolling_sandbox.cloud.moto_server import MotoServer


@pytest.mark.parametrize(
    ("service", "action", "call"),
    [
        ("autoscaling", "DescribeAutoScalingGroups", lambda c: c.describe_auto_scaling_groups()),
        ("ec2", "DescribeInstances", lambda c: c.describe_instances()),
        ("dynamodb", "ListTables", lambda c: c.list_tables()),
    ],
    ids=["query-xml", "ec2-xml", "json"],
)
def test_an_injected_error_reaches_boto3_with_its_code_then_calls_pass(
    moto: MotoServer, service: str, action: str, call
) -> None:  # type: ignore[no-untyped-def]
    client = moto.client(service)
    # A code botocore does not retry by itself, so one call meets the fault exactly once
    fault = moto.faults.add(action, "ScalingActivityInProgress", status=400, times=1, after=1)
    try:
        call(client)  # the first call passes (after=1)
        with pytest.raises(ClientError) as err:
            call(client)
        assert err.value.response["Error"]["Code"] == "ScalingActivityInProgress"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        call(client)  # times=1: then the API answers again
        assert (fault.seen, fault.fired) == (3, 1)
    finally:
        moto.faults.clear()


def test_a_fault_matches_only_its_action(moto: MotoServer) -> None:
    moto.faults.add("SetDesiredCapacity", "ScalingActivityInProgress")
    try:
        moto.client("autoscaling").describe_auto_scaling_groups()
        assert moto.faults.faults[0].seen == 0
    finally:
        moto.faults.clear()
