"""Is a Step Functions execution still alive? Asked of the execution that holds a lock, so a run
that died without its Catch path (aborted, timed out, history overflow) does not keep the lock,
and everything it paused, for the lock's whole TTL."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from eks_rolling.aws.clients import aws_errors, error_code
from eks_rolling.errors import LockHolderUnknownError

log = logging.getLogger(__name__)

# PENDING_REDRIVE: an operator asked to redrive it; it will run again and expects its lock.
ALIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})
# The input field a child execution names its parent with (startExecution.sync:2's convention).
STARTED_BY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"


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

    def running_children(self, state_machine_arn: str, parent_arn: str, name_prefix: str) -> list[str]:
        """The RUNNING executions of `state_machine_arn` that `parent_arn` started: names with
        `name_prefix` (a cheap filter), then each one's input says its parent (exact)."""
        out: list[str] = []
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": "RUNNING"}
        while True:
            with aws_errors():
                page = self._sfn.list_executions(**kwargs)
            for ex in page.get("executions", []):
                if not str(ex["name"]).startswith(name_prefix):
                    continue
                with aws_errors():
                    described = self._sfn.describe_execution(executionArn=ex["executionArn"])
                if _started_by(described.get("input")) == parent_arn:
                    out.append(str(ex["executionArn"]))
            if not page.get("nextToken"):
                return out
            kwargs["nextToken"] = page["nextToken"]

    def stop(self, execution_arn: str, error: str, cause: str) -> None:
        """Stop it; one that ended meanwhile is left as it is."""
        try:
            with aws_errors():
                self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause[:32768])
        except ClientError as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise


def _started_by(text: str | None) -> str | None:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return None
    return value.get(STARTED_BY) if isinstance(value, dict) else None
