"""aws_client wiring and the transient-error mapping."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from eks_rolling.aws.clients import aws_client, aws_errors, translate_client_error
from eks_rolling.errors import AwsThrottledError, RetryableError
from eks_rolling.settings import Settings


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DescribeAutoScalingGroups",
    )


def test_client_honours_region_endpoint_and_retry_config(settings: Settings) -> None:
    client = aws_client("autoscaling", settings.model_copy(update={"region": "eu-west-1"}))

    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == settings.aws_endpoint_url
    # botocore reads Config(max_attempts=5) as 5 retries, i.e. 6 attempts in total.
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 6}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5, 30)
    assert client.describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_without_endpoint_override_the_client_targets_real_aws() -> None:
    client = aws_client("autoscaling", Settings(region="ap-southeast-2"))
    assert client.meta.endpoint_url == "https://autoscaling.ap-southeast-2.amazonaws.com"


def test_clients_can_be_built_from_many_threads(settings: Settings) -> None:
    errors: list[BaseException] = []

    def build() -> None:
        try:
            aws_client("ec2", settings).describe_instances()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


@pytest.mark.parametrize(
    "exc",
    [
        client_error("Throttling", 400),
        client_error("RequestLimitExceeded", 503),
        client_error("ProvisionedThroughputExceededException", 400),
        client_error("InternalFailure", 500),
        client_error("SomethingNew", 502),
        EndpointConnectionError(endpoint_url="https://autoscaling.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://autoscaling.us-east-1.amazonaws.com"),
    ],
)
def test_transient_failures_become_retryable(exc: Exception) -> None:
    translated = translate_client_error(exc)
    assert isinstance(translated, AwsThrottledError)
    assert isinstance(translated, RetryableError)


@pytest.mark.parametrize(
    "exc",
    [client_error("ValidationError", 400), client_error("AccessDenied", 403), ValueError("x")],
)
def test_other_failures_are_left_alone(exc: Exception) -> None:
    assert translate_client_error(exc) is exc


def test_context_manager_chains_the_original() -> None:
    original = client_error("Throttling", 400)
    with (
        pytest.raises(AwsThrottledError, match=r"DescribeAutoScalingGroups .*\(Throttling\)") as info,
        aws_errors(),
    ):
        raise original
    assert info.value.__cause__ is original

    validation = client_error("ValidationError", 400)
    with pytest.raises(ClientError) as raw, aws_errors():
        raise validation
    assert raw.value is validation


def test_a_real_aws_error_passes_through_untouched(clients: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as info, aws_errors():
        clients["autoscaling"].update_auto_scaling_group(AutoScalingGroupName="ghost", DesiredCapacity=1)
    assert info.value.response["Error"]["Code"] == "ValidationError"
