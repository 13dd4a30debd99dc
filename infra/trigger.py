"""Start a roll when a launch template in use changes (CloudTrail events on the default bus).

The state machine gets the WHOLE EventBridge event as its input: ResolveTarget parses it (and
also accepts the manual `{"asgName": ..., "dryRun": ...}` input), re-deriving old vs new from
the ASG and EC2, never trusting the event alone. Calls that failed (`errorCode`) and updates that
do not touch the launch template (capacity only) never start an execution.

The patterns themselves live in `eks_rolling.triggers` (the running sandbox deploys the same).

EventBridge sees these API calls only if a CloudTrail trail with logging enabled records this
region's write management events (`infra/trail.py` makes one on request). Some changes emit no
event at all: a template whose ImageId is `resolve:ssm:...` gets a new AMI when AWS updates the
public parameter, in AWS's account. The optional drift check (`drift_check_schedule`) starts the
state machine on a schedule with the Scheduled Event itself as input.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from eks_rolling.triggers import CLOUDTRAIL, TRIGGER_PATTERNS

from . import nag

RETRY_ATTEMPTS: Final = 16
MAX_EVENT_AGE: Final = Duration.hours(2)


class Trigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        drift_check_schedule: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Events EventBridge could not deliver (StartExecution refused, retries exhausted).
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "this queue IS a dead-letter queue (of the EventBridge -> Step Functions targets); "
            "an alarm watches its depth",
        )
        self.rules: dict[str, events.Rule] = {}
        for name, (source, detail) in TRIGGER_PATTERNS.items():
            rule = events.Rule(
                self,
                name,
                description=f"eks-rolling: start a roll on {detail['eventName'][0]}",
                event_pattern=events.EventPattern(source=[source], detail_type=[CLOUDTRAIL], detail=detail),
            )
            rule.add_target(
                targets.SfnStateMachine(
                    state_machine,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            )
            self.rules[name] = rule
        self.drift_check: events.Rule | None = None
        if drift_check_schedule:
            # The Scheduled Event is the input, unchanged: ResolveTarget recognises it by its
            # `source` / `detail-type` and checks every opted-in group for drift.
            self.drift_check = events.Rule(
                self,
                "DriftCheck",
                description="eks-rolling: scheduled drift check of every opted-in Auto Scaling group",
                schedule=events.Schedule.expression(drift_check_schedule),
            )
            self.drift_check.add_target(
                targets.SfnStateMachine(
                    state_machine,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            )
