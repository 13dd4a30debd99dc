"""Alarms (to the notification topics) and a dashboard for the state machine and its steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from eks_rolling.steps import Step

PERIOD: Final = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        steps: Sequence[Step],
        dead_letter_queue: sqs.IQueue,
        topics: Sequence[sns.ITopic],
    ) -> None:
        super().__init__(scope, construct_id)
        sm = state_machine
        self.alarms: list[cloudwatch.Alarm] = []
        for alarm_id, metric, what in (
            ("ExecutionsFailed", sm.metric_failed(period=PERIOD), "failed (a rollback ran; see the history)"),
            ("ExecutionsTimedOut", sm.metric_timed_out(period=PERIOD), "timed out: NOTHING was restored"),
            ("ExecutionsAborted", sm.metric_aborted(period=PERIOD), "were aborted: NOTHING was restored"),
        ):
            self._alarm(alarm_id, metric, f"{name}: executions {what}")
        for step in steps:
            fn = functions[step.id]
            self._alarm(
                f"{step.state}Errors",
                fn.metric_errors(period=PERIOD),
                f"{name}: {step.state} raised (each error is retried or rolled back by the state machine)",
            )
        self._alarm(
            "TriggerDeadLetters",
            dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD),
            f"{name}: a launch template change could not start a roll (see the dead-letter queue)",
        )
        for alarm in self.alarms:
            for topic in topics:
                alarm.add_alarm_action(actions.SnsAction(topic))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                width=24,
                left=[
                    sm.metric_started(period=PERIOD, label="started"),
                    sm.metric_succeeded(period=PERIOD, label="succeeded"),
                    sm.metric_failed(period=PERIOD, label="failed"),
                    sm.metric_timed_out(period=PERIOD, label="timed out"),
                    sm.metric_aborted(period=PERIOD, label="aborted"),
                ],
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors by step",
                width=12,
                left=[functions[s.id].metric_errors(period=PERIOD, label=s.state) for s in steps],
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration by step (p95, ms)",
                width=12,
                left=[
                    functions[s.id].metric_duration(period=PERIOD, statistic="p95", label=s.state)
                    for s in steps
                ],
            ),
        )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=self.alarms))

    def _alarm(self, alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
