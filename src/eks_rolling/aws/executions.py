"""Is a Step Functions execution still alive? Asked of the execution that holds a lock, so a run
that died without its Catch path (aborted, timed out, history overflow) does not keep the lock,
and everything it paused, for the lock's whole TTL."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from eks_rolling.aws.clients import aws_errors, error_code
from eks_rolling.errors import LockHolderUnknownError

log = logging.getLogger(__name__)

# PENDING_REDRIVE: an operator asked to redrive it; it will run again and expects its lock.
ALIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})


class Executions:
    def __init__(self, stepfunctions_client: Any) -> None:
        self._sfn = stepfunctions_client

    def status(self, execution_arn: str) -> str:
        """The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE).

        LockHolderUnknownError when it cannot be described (not an ARN, deleted, another
        account's, access denied): a lock is never taken from a holder we cannot see."""
        try:
            with aws_errors():
                status = str(self._sfn.describe_execution(executionArn=execution_arn)["status"])
        except ClientError as exc:
            raise LockHolderUnknownError(
                f"cannot tell whether lock holder {execution_arn} is still running "
                f"({error_code(exc) or type(exc).__name__}); free the lock by hand once it is known dead"
            ) from exc
        log.info("execution %s is %s", execution_arn, status)
        return status

    def is_alive(self, execution_arn: str) -> bool:
        return self.status(execution_arn) in ALIVE
