"""eks_rolling.aws.notify against moto: JSON body, `kind` attribute, no secrets, never fatal.

Runs against moto's SNS (delivering to an SQS queue to read messages back); the stack tests
(tests/infra/test_lambdas.py, test_iam.py) check that the stack sets EKS_ROLLING_NOTIFY_TOPIC_ARN and
grants sns:Publish.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from eks_rolling.aws.notify import MASK, Notifier, notifier, redact
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.moto_server import MotoServer

REGION = "us-east-1"


@pytest.fixture
def inbox(moto: MotoServer) -> Iterator[SimpleNamespace]:
    """A topic delivering (raw) to a queue, so the test reads exactly what subscribers get."""
    moto.reset()
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic_arn = sns.create_topic(Name="eks-rolling")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    yield SimpleNamespace(sns=sns, topic_arn=topic_arn, received=received)


def test_publishes_json_with_the_kind_attribute(inbox: SimpleNamespace) -> None:
    # Given a notifier for the topic
    notify = Notifier(inbox.sns, inbox.topic_arn)
    # When a node is done
    message_id = notify.publish(
        "node_done", "node ip-10-0-1-5 replaced", {"asg": "prod-a", "instance": "i-0abc", "evicted": 12}
    )
    # Then subscribers get the JSON message, the subject and the kind as a message attribute
    assert message_id
    (envelope,) = inbox.received()
    assert envelope["Subject"] == "[eks-rolling] node ip-10-0-1-5 replaced"
    assert envelope["MessageAttributes"]["kind"] == {"Type": "String", "Value": "node_done"}
    body = json.loads(envelope["Message"])
    assert body == {
        "source": "eks-rolling",
        "kind": "node_done",
        "subject": "node ip-10-0-1-5 replaced",
        "detail": {"asg": "prod-a", "instance": "i-0abc", "evicted": 12},
    }


def test_secrets_never_leave_the_step(inbox: SimpleNamespace) -> None:
    notify = Notifier(inbox.sns, inbox.topic_arn)
    notify.publish(
        "failed",
        "rollback of prod-a",
        {
            "error": "RedisFailoverError",
            "redis": {"url": "redis://:hunter2@10.0.3.7:6379/0", "password": "hunter2", "auth_token": "tok"},
            "kube": {"authorization": "Bearer k8s-aws-v1.aHR0cHM6Ly9zdHM"},
            "cause": "token k8s-aws-v1.aHR0cHM6Ly9zdHM rejected",
        },
    )
    (envelope,) = inbox.received()
    assert "hunter2" not in json.dumps(envelope)
    assert "aHR0cHM6Ly9zdHM" not in json.dumps(envelope)
    detail = json.loads(envelope["Message"])["detail"]
    assert detail["redis"] == {"url": f"redis://{MASK}@10.0.3.7:6379/0", "password": MASK, "auth_token": MASK}
    assert detail["error"] == "RedisFailoverError"


def test_subject_is_made_acceptable_to_sns(inbox: SimpleNamespace) -> None:
    notify = Notifier(inbox.sns, inbox.topic_arn)
    assert notify.publish("blocked", "PDB web/api blocks\nthe roll: " + "x" * 200 + " é", {"pdb": "web/api"})
    (envelope,) = inbox.received()
    assert len(envelope["Subject"]) <= 100
    assert "\n" not in envelope["Subject"] and envelope["Subject"].isascii()


def test_no_topic_is_a_no_op() -> None:
    class Boom:
        def publish(self, **_: Any) -> None:
            raise AssertionError("must not be called")

    assert Notifier(Boom(), None).publish("started", "x", {}) is None


def test_unknown_kind_is_a_programming_error(inbox: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="unknown notification kind 'done'"):
        Notifier(inbox.sns, inbox.topic_arn).publish("done", "x", {})  # type: ignore[arg-type]


def test_a_failed_publish_never_fails_the_step(
    inbox: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    missing = inbox.topic_arn.replace("eks-rolling", "deleted-topic")
    assert Notifier(inbox.sns, missing).publish("failed", "rollback", {"password": "hunter2"}) is None
    assert "notification failed not sent" in caplog.text
    assert "hunter2" not in caplog.text


def test_oversized_detail_is_replaced_by_its_keys() -> None:
    text = Notifier(None, "arn").message("succeeded", "done", {"nodes": ["n"] * 100_000, "asg": "a"})
    assert json.loads(text)["detail"] == {"truncated": True, "keys": ["asg", "nodes"]}


def test_notifier_from_settings(moto: MotoServer, inbox: SimpleNamespace) -> None:
    base = Settings(region=REGION, aws_endpoint_url=moto.endpoint_url)
    # Without EKS_ROLLING_NOTIFY_TOPIC_ARN: a no-op notifier
    assert notifier(base).enabled is False
    notify = notifier(base.model_copy(update={"notify_topic_arn": inbox.topic_arn}))
    assert notify.enabled
    assert notify.publish("started", "roll of prod-a", {"asg": "prod-a"})
    assert [json.loads(m["Message"])["kind"] for m in inbox.received()] == ["started"]


def test_redact_keeps_harmless_values() -> None:
    assert redact({"passed": 3, "bypass": "x", "nodes": ("a", "b"), "n": None}) == {
        "passed": 3,
        "bypass": "x",
        "nodes": ["a", "b"],
        "n": None,
    }
