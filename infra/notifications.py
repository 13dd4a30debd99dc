"""Where people hear about rolls: a KMS-encrypted SNS topic (plus, optionally, an existing one).

Three sources publish to it: the steps themselves (`eks_rolling.aws.notify`: node done, plan
blocked, rollback), EventBridge on every execution status change, and the CloudWatch alarms.
"""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        display_name: str,
        email: str | None,
        existing_topic_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{display_name}: notifications topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(30),
        )
        # CloudWatch alarms and EventBridge publish to an encrypted topic only if the key lets them.
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"PublishFrom{service.split('.')[0].capitalize()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                    resources=["*"],  # in a key policy, "*" is this key
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            )
        self.topic = sns.Topic(
            self, "Topic", display_name=display_name, master_key=self.key, enforce_ssl=True
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        # Everything that alarms or reports status goes to every destination.
        self.destinations: list[sns.ITopic] = [self.topic]
        if existing_topic_arn:
            self.destinations.append(sns.Topic.from_topic_arn(self, "ExistingTopic", existing_topic_arn))

    def notify_on_status_changes(self, state_machine: sfn.IStateMachine) -> events.Rule:
        """Started, succeeded, failed, timed out and aborted executions, as a short JSON message."""
        rule = events.Rule(
            self,
            "ExecutionStatusChanged",
            description="eks-rolling: every execution status change goes to the notifications topic",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [state_machine.state_machine_arn],
                    "status": list(EXECUTION_STATUSES),
                },
            ),
        )
        message = events.RuleTargetInput.from_object(
            {
                "source": "eks-rolling",
                "status": events.EventField.from_path("$.detail.status"),
                "execution": events.EventField.from_path("$.detail.name"),
                "executionArn": events.EventField.from_path("$.detail.executionArn"),
                "startDate": events.EventField.from_path("$.detail.startDate"),
                "stopDate": events.EventField.from_path("$.detail.stopDate"),
                "region": events.EventField.from_path("$.region"),
            }
        )
        for topic in self.destinations:
            rule.add_target(RuleOnlyTopicTarget(topic, message))
        return rule


@jsii.implements(events.IRuleTarget)
class RuleOnlyTopicTarget:
    """An SNS target that only the binding rule may publish through.

    `aws_events_targets.SnsTopic` grants `events.amazonaws.com` sns:Publish with no condition,
    which would let EventBridge rules of any account publish to the topic (a confused deputy);
    this grant carries `aws:SourceArn` = the rule. On an imported topic nothing is granted: its
    owner's policy decides.
    """

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        self._topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self._topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_ref.rule_arn}},
            )
        )
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)
