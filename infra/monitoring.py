"""Alarms (to the notification topics) and a dashboard for the state machine, its steps and the
roll's own metrics (eks_rolling.metrics: EMF, namespace EksRolling, dimensions cluster and asg)."""

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

from eks_rolling.metrics import ASG_DIMENSION, CLUSTER_DIMENSION, NAMESPACE, Metric
from eks_rolling.steps import Step

PERIOD: Final = Duration.minutes(5)
# The steps that run while a roll is under way, round after round (polling loops).
ACTIVE_STEPS: Final = ("wait_new_nodes", "move_redis_pods", "drain_node", "wait_owners_ready")


def roll_metric(metric: Metric, statistic: str, label: str) -> cloudwatch.MathExpression:
    """One line per cluster and ASG: their dimension values are only known at run time."""
    schema = f"{{{NAMESPACE},{CLUSTER_DIMENSION},{ASG_DIMENSION}}}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{schema} MetricName=\"{metric.value}\"', '{statistic}', {int(PERIOD.to_seconds())})",
        using_metrics={},
        label=label,
        period=PERIOD,
    )


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
        stalled_roll_minutes: int = 30,
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
        self.stalled = self._stalled_roll(functions, stalled_roll_minutes, name)
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
        graph = cloudwatch.GraphWidget
        self.dashboard.add_widgets(
            graph(title="Nodes replaced", width=8, left=[roll_metric(Metric.NODES_REPLACED, "Sum", "")]),
            graph(
                title="Node replacement and drain duration (s, max)",
                width=8,
                left=[roll_metric(Metric.NODE_REPLACEMENT_DURATION, "Maximum", "replacement")],
                right=[roll_metric(Metric.DRAIN_DURATION, "Maximum", "drain")],
            ),
            graph(
                title="Evictions refused (429) and failed",
                width=8,
                left=[
                    roll_metric(Metric.EVICTION_REFUSALS, "Sum", "429"),
                    roll_metric(Metric.EVICTION_ERRORS, "Sum", "error"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                title="Owners' recovery time (s, max)",
                width=8,
                left=[roll_metric(Metric.OWNERS_RECOVERY_TIME, "Maximum", "")],
            ),
            graph(
                title="Redis write pause per switchover (ms, max)",
                width=8,
                left=[roll_metric(Metric.REDIS_WRITE_PAUSE, "Maximum", "Sentinel")],
                right=[roll_metric(Metric.REDIS_FAILOVER_TIME, "Maximum", "Cluster failover")],
            ),
            graph(
                title="Temporary Redis Cluster nodes alive (max)",
                width=8,
                left=[roll_metric(Metric.TEMP_CLUSTER_NODES, "Maximum", "")],
            ),
        )
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=self.alarms))

    def _stalled_roll(
        self, functions: Mapping[str, lambda_.IFunction], minutes: int, name: str
    ) -> cloudwatch.Alarm:
        """A roll whose steps keep polling but that replaced no node for `minutes`: stuck on a
        PDB, a do-not-disrupt pod, a Redis group or new nodes that never join."""
        period = Duration.minutes(minutes)
        active = {
            f"a{i}": functions[step].metric_invocations(period=period, statistic="Sum")
            for i, step in enumerate(ACTIVE_STEPS)
        }
        replaced = cloudwatch.Metric(
            namespace=NAMESPACE, metric_name=Metric.NODES_REPLACED.value, statistic="Sum", period=period
        )
        polling = " + ".join(f"FILL({k}, 0)" for k in active)
        alarm = cloudwatch.Alarm(
            self,
            "RollStalled",
            alarm_description=f"{name}: a roll replaced no node for {minutes} min while its steps kept running (see `eks-rolling status`)",
            metric=cloudwatch.MathExpression(
                expression=f"IF(({polling}) > 0 AND FILL(replaced, 0) == 0, 1, 0)",
                using_metrics={**active, "replaced": replaced},
                label="stalled",
                period=period,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms.append(alarm)
        return alarm

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
