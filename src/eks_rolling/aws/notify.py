"""Roll notifications to SNS: what the steps themselves report (a node replaced, a plan blocked,
a rollback), next to the execution status changes EventBridge sends to the same topic.

A notification never fails a step: without a topic it is a no-op, and a failed publish is logged
and dropped (the execution history remains the audit trail). Messages are JSON with a `kind`
message attribute (for subscription filter policies), and never carry secrets: values under
secret-looking keys, URL credentials and EKS tokens are masked before anything leaves the step.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from botocore.exceptions import BotoCoreError, ClientError

from eks_rolling.aws.clients import aws_client
from eks_rolling.settings import Settings

log = logging.getLogger(__name__)

NotifyKind = Literal[
    "started", "node_done", "blocked", "succeeded", "failed", "taken_over", "waiting", "paused", "resumed"
]
KINDS: Final[frozenset[str]] = frozenset(get_args(NotifyKind))

SOURCE: Final = "eks-rolling"
MASK: Final = "***"
SUBJECT_MAX: Final = 100  # SNS: ASCII, no line breaks, at most 100 characters
MESSAGE_MAX: Final = 256 * 1024  # SNS message size limit, bytes
_SECRET_KEY: Final = re.compile(
    r"pass(word|wd|phrase)|(^|[-_.])pass($|[-_.])|secret|token|credential|authori[sz]ation|"
    r"api[-_]?key|private[-_]?key",
    re.IGNORECASE,
)
_URL_CREDENTIALS: Final = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)
_EKS_TOKEN: Final = re.compile(r"k8s-aws-v1\.[A-Za-z0-9_-]+")


def redact(value: Any, *, _depth: int = 0) -> Any:
    """`value` made JSON-safe with secrets masked (by key name and by recognisable content)."""
    if _depth > 20:
        return MASK
    if isinstance(value, Mapping):
        return {
            str(k): MASK if _SECRET_KEY.search(str(k)) else redact(v, _depth=_depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth=_depth + 1) for v in value]
    if isinstance(value, str):
        return _EKS_TOKEN.sub(MASK, _URL_CREDENTIALS.sub(rf"\g<scheme>{MASK}@", value))
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value), _depth=_depth + 1)


def _subject(text: str) -> str:
    # SNS rejects non-ASCII, control characters and > 100 characters in Subject.
    clean = "".join(c if " " <= c <= "~" else " " for c in text).strip() or SOURCE
    return clean if len(clean) <= SUBJECT_MAX else clean[: SUBJECT_MAX - 3] + "..."


class Notifier:
    """Publish roll notifications to `topic_arn`; a no-op when it is None."""

    def __init__(self, sns_client: Any, topic_arn: str | None) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn

    @property
    def enabled(self) -> bool:
        return self._topic_arn is not None

    def message(self, kind: NotifyKind, subject: str, detail: Mapping[str, Any]) -> str:
        """The JSON body that `publish` sends (detail redacted, shortened to fit SNS)."""
        body = {"source": SOURCE, "kind": kind, "subject": subject, "detail": redact(detail)}
        text = json.dumps(body, sort_keys=True, default=str)
        if len(text.encode()) > MESSAGE_MAX:
            body["detail"] = {"truncated": True, "keys": sorted(str(k) for k in detail)}
            text = json.dumps(body, sort_keys=True)
        return text

    def publish(self, kind: NotifyKind, subject: str, detail: Mapping[str, Any]) -> str | None:
        """Send one notification; the SNS message id, or None (no topic, or publish failed)."""
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; expected one of {sorted(KINDS)}")
        if self._topic_arn is None:
            return None
        message = self.message(kind, subject, detail)
        try:
            resp = self._sns.publish(
                TopicArn=self._topic_arn,
                Subject=_subject(f"[{SOURCE}] {subject}"),
                Message=message,
                MessageAttributes={
                    "kind": {"DataType": "String", "StringValue": kind},
                    "source": {"DataType": "String", "StringValue": SOURCE},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            # Best effort by design: a roll (or a rollback) must not stop because a message failed.
            log.warning("notification %s not sent: %s", kind, type(exc).__name__)
            return None
        message_id: str | None = resp.get("MessageId")
        log.info("notification %s sent (%s)", kind, message_id)
        return message_id


def notifier(settings: Settings) -> Notifier:
    """The Notifier for `settings.notify_topic_arn` (EKS_ROLLING_NOTIFY_TOPIC_ARN); no-op if unset."""
    topic_arn = settings.notify_topic_arn or None
    client = aws_client("sns", settings) if topic_arn else None
    return Notifier(client, topic_arn)
