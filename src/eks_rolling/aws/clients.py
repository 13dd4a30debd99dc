"""boto3 clients built from `Settings`, and the mapping of transient AWS faults to our errors."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from eks_rolling.errors import AwsThrottledError
from eks_rolling.settings import Settings

log = logging.getLogger(__name__)

# botocore's own retryer already spends these attempts; what still escapes is handed to the
# state machine as AwsThrottledError so its Retry block backs off for longer.
_CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
)

# Union of botocore's throttled and transient error codes (botocore/retries/standard.py), plus
# the generic server-side fault codes some query-protocol services return with HTTP 5xx.
_THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        # The ASG is busy with another scaling activity (UpdateAutoScalingGroup, SetDesiredCapacity,
        # TerminateInstanceInAutoScalingGroup): it clears when that activity ends, so wait.
        "ScalingActivityInProgress",
    }
)

# Sessions are not thread-safe and moto's interpreter may run handlers in parallel threads; one
# session per thread keeps botocore's loaded service models cached between clients. A session
# resolves credentials once, so it is also keyed by the credential environment: config is read
# at call time, and a changed environment must not keep signing with old credentials.
_local = threading.local()
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def _session() -> Any:
    key = tuple(os.environ.get(k) for k in _CREDENTIAL_ENV)
    if getattr(_local, "key", None) != key:
        _local.session = boto3.session.Session()
        _local.key = key
    return _local.session


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def aws_client(service: str, settings: Settings) -> Any:
    """A boto3 client for `service` in `settings.region`; `aws_endpoint_url` None means real AWS.

    Clients are thread-safe and costly to build, so they are reused across invocations of a
    warm Lambda (keyed by everything that shapes them, credentials included)."""
    key = (
        service,
        settings.region,
        settings.aws_endpoint_url,
        tuple(os.environ.get(k) for k in _CREDENTIAL_ENV),
    )
    with _clients_lock:
        client = _clients.get(key)
    if client is None:
        client = _session().client(
            service,
            region_name=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            config=_CLIENT_CONFIG,
        )
        with _clients_lock:
            client = _clients.setdefault(key, client)
    return client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """True for throttling, AWS 5xx and connection-level failures."""
    if isinstance(exc, ClientError):
        if error_code(exc) in _THROTTLED_CODES:
            return True
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def translate_client_error(exc: BaseException) -> BaseException:
    """`AwsThrottledError` for a transient fault, else `exc` itself (unchanged)."""
    if not is_transient(exc):
        return exc
    operation = getattr(exc, "operation_name", None) or "AWS call"
    code = error_code(exc) or type(exc).__name__
    return AwsThrottledError(f"{operation} failed transiently ({code}); retry later")


@contextmanager
def aws_errors() -> Iterator[None]:
    """Re-raise transient botocore failures as `AwsThrottledError`; let the rest through."""
    try:
        yield
    except (ClientError, BotoConnectionError, HTTPClientError) as exc:
        translated = translate_client_error(exc)
        if translated is exc:
            raise
        log.warning("transient AWS failure: %s", translated)
        raise translated from exc
