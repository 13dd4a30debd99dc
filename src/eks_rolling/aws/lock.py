"""A per-ASG lock in DynamoDB, so two executions never roll the same group at once.

One item per group, written with conditional expressions only (no read-then-write race). The
lock expires on its own (`expires_at`, also the table's TTL attribute) so a crashed execution
cannot block a group for ever; DynamoDB's TTL deletion is lazy, so expiry is checked in the
condition, not left to TTL.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from eks_rolling.aws.clients import aws_errors, error_code
from eks_rolling.errors import LockLostError, RollInProgressError, RollNotFoundError

log = logging.getLogger(__name__)

KEY_ATTR = "lock_key"
EXPIRES_ATTR = "expires_at"
TOOK_OVER_ATTR = "took_over_from"
# An operator's pause / resume / abort of the roll holding the lock (`eks-rolling pause` etc.):
# the lock item lives exactly as long as the roll, so a control never outlives its roll.
CONTROL_ATTR = "control"
CONTROL_BY_ATTR = "control_by"
CONTROL_AT_ATTR = "control_at"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def lock_key(name: str, scope: str = "asg") -> str:
    return f"{scope}#{name}"


class AsgLock:
    """`key` in every method is the ASG name (or, with `scope="redis"`, a Redis group); the item
    key is `<scope>#<name>`, so every lock lives in the one table."""

    def __init__(self, dynamodb_client: Any, table: str, *, scope: str = "asg") -> None:
        self._ddb = dynamodb_client
        self._table = table
        self._scope = scope
        self._what = "ASG" if scope == "asg" else scope

    def acquire(self, key: str, owner: str, *, ttl_s: int, now: float) -> str | None:
        """Take the lock if free, expired, or already ours (a retried step renews it).

        Returns the previous holder when this owner took the lock from one (an expired lock,
        or, on a retry, the dead holder `take_over` replaced), so that what it left can be
        restored. Raises RollInProgressError naming the current owner otherwise.
        """
        expires_at = int(now) + ttl_s
        try:
            with aws_errors():
                old = (
                    self._ddb.put_item(
                        TableName=self._table,
                        Item=self._item(key, owner, now=now, ttl_s=ttl_s),
                        ConditionExpression="attribute_not_exists(#k) OR #exp <= :now OR #owner = :owner",
                        ExpressionAttributeNames={"#k": KEY_ATTR, "#exp": EXPIRES_ATTR, "#owner": "owner"},
                        ExpressionAttributeValues={":now": {"N": str(int(now))}, ":owner": {"S": owner}},
                        ReturnValues="ALL_OLD",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    ).get("Attributes")
                    or {}
                )
        except ClientError as exc:
            if error_code(exc) != _CONDITION_FAILED:
                raise
            item = exc.response.get("Item") or {}
            holder = item.get("owner", {}).get("S") or self.holder(key) or "unknown"
            until = item.get(EXPIRES_ATTR, {}).get("N", "?")
            raise RollInProgressError(
                f"{self._what} {key} is being rolled by {holder} (lock expires at {until})",
                holder=None if holder == "unknown" else holder,
            ) from exc
        log.info("lock for %s %s taken until %d", self._what, key, expires_at)
        previous: str | None = old.get("owner", {}).get("S")
        # Ours already (a retry): whoever we took it over from. Someone else's: it had expired.
        took_over: str | None = old.get(TOOK_OVER_ATTR, {}).get("S") if previous == owner else previous
        if took_over:  # recorded, so that a retried step restores what it left as well
            with aws_errors():
                self._ddb.update_item(
                    TableName=self._table,
                    Key={KEY_ATTR: {"S": lock_key(key, self._scope)}},
                    UpdateExpression="SET #t = :t",
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#t": TOOK_OVER_ATTR, "#owner": "owner"},
                    ExpressionAttributeValues={":t": {"S": took_over}, ":owner": {"S": owner}},
                )
        return took_over

    def _item(self, key: str, owner: str, *, now: float, ttl_s: int) -> dict[str, Any]:
        """The lock item `owner` holds from `now` for `ttl_s` seconds."""
        return {
            KEY_ATTR: {"S": lock_key(key, self._scope)},
            "owner": {"S": owner},
            "acquired_at": {"N": str(int(now))},
            EXPIRES_ATTR: {"N": str(int(now) + ttl_s)},
        }

    def take_over(self, key: str, *, holder: str, owner: str, ttl_s: int, now: float) -> bool:
        """Replace `holder` by `owner`, only if `holder` still holds the lock (a third run that
        took it over first wins; False then). The caller has checked that `holder` is dead."""
        try:
            with aws_errors():
                self._ddb.put_item(
                    TableName=self._table,
                    Item={**self._item(key, owner, now=now, ttl_s=ttl_s), TOOK_OVER_ATTR: {"S": holder}},
                    ConditionExpression="#owner = :holder",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":holder": {"S": holder}},
                )
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        log.warning("lock for %s %s taken over from %s by %s", self._what, key, holder, owner)
        return True

    def release(self, key: str, owner: str) -> bool:
        """Delete the lock if `owner` holds it; False when it is absent or someone else's."""
        try:
            with aws_errors():
                self._ddb.delete_item(
                    TableName=self._table,
                    Key={KEY_ATTR: {"S": lock_key(key, self._scope)}},
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                log.info("lock for %s %s not held by this execution; left alone", self._what, key)
                return False
            raise
        log.info("lock for %s %s released", self._what, key)
        return True

    def hold(self, key: str, owner: str, *, ttl_s: int, now: float) -> tuple[str, str] | None:
        """Renew `owner`'s lock (a roll waiting for a window or paused may outlive the TTL) and
        return the operator's (control, by) stored on it, if any. LockLostError when `owner` no
        longer holds it."""
        try:
            with aws_errors():
                item = self._ddb.update_item(
                    TableName=self._table,
                    Key={KEY_ATTR: {"S": lock_key(key, self._scope)}},
                    UpdateExpression="SET #exp = :exp",
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#exp": EXPIRES_ATTR, "#owner": "owner"},
                    ExpressionAttributeValues={":exp": {"N": str(int(now) + ttl_s)}, ":owner": {"S": owner}},
                    ReturnValues="ALL_NEW",
                )["Attributes"]
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                raise LockLostError(f"{self._what} {key}: this execution no longer holds the lock") from exc
            raise
        control = item.get(CONTROL_ATTR, {}).get("S")
        return (control, item.get(CONTROL_BY_ATTR, {}).get("S", "unknown")) if control else None

    def set_control(self, key: str, control: str, *, by: str, now: float) -> str:
        """Store an operator's control on the roll holding the lock; returns that roll (its
        execution). RollNotFoundError when no roll holds it."""
        try:
            with aws_errors():
                item = self._ddb.update_item(
                    TableName=self._table,
                    Key={KEY_ATTR: {"S": lock_key(key, self._scope)}},
                    UpdateExpression="SET #c = :c, #by = :by, #at = :at",
                    ConditionExpression="attribute_exists(#k) AND #exp > :now",
                    ExpressionAttributeNames={
                        "#c": CONTROL_ATTR,
                        "#by": CONTROL_BY_ATTR,
                        "#at": CONTROL_AT_ATTR,
                        "#k": KEY_ATTR,
                        "#exp": EXPIRES_ATTR,
                    },
                    ExpressionAttributeValues={
                        ":c": {"S": control},
                        ":by": {"S": by},
                        ":at": {"N": str(int(now))},
                        ":now": {"N": str(int(now))},
                    },
                    ReturnValues="ALL_NEW",
                )["Attributes"]
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                raise RollNotFoundError(f"no roll of {self._what} {key} is running (no lock held)") from exc
            raise
        return str(item.get("owner", {}).get("S", ""))

    def keys_held_by(self, owner: str) -> list[str]:
        """The names whose lock `owner` holds (the CLI finds a roll's ASG by its execution)."""
        prefix = lock_key("", self._scope)
        with aws_errors():
            pages = self._ddb.get_paginator("scan").paginate(
                TableName=self._table,
                FilterExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
            keys = [i[KEY_ATTR]["S"] for page in pages for i in page.get("Items", [])]
        return sorted(k.removeprefix(prefix) for k in keys if k.startswith(prefix))

    def holder(self, key: str, *, now: float | None = None) -> str | None:
        """Current owner (None if free). With `now`, an expired lock counts as free."""
        with aws_errors():
            item = self._ddb.get_item(
                TableName=self._table, Key={KEY_ATTR: {"S": lock_key(key, self._scope)}}, ConsistentRead=True
            ).get("Item")
        if not item:
            return None
        if now is not None and int(item.get(EXPIRES_ATTR, {}).get("N", "0")) <= now:
            return None
        owner: str | None = item.get("owner", {}).get("S")
        return owner


def create_lock_table(dynamodb_client: Any, table: str) -> None:
    """Create the lock table (on-demand, TTL on `expires_at`) unless it exists. For the sandbox;
    CDK owns the real table."""
    try:
        with aws_errors():
            dynamodb_client.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": KEY_ATTR, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": KEY_ATTR, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
    with aws_errors():
        dynamodb_client.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        ttl = dynamodb_client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        # Enabling TTL twice is an error on AWS, so only do it when it is off.
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb_client.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES_ATTR}
            )
    log.info("lock table %s ready", table)
