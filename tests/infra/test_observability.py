"""Notifications, alarms, dashboard and the lock table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eks_rolling.metrics import ASG_DIMENSION, CLUSTER_DIMENSION, NAMESPACE, Metric
from eks_rolling.steps import STEPS
from infra.monitoring import ACTIVE_STEPS
from tests.infra.cdk_support import Synth, matches


def _topic_id(synth: Synth) -> str:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    return topic_id


def _alarms_by_metric(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        # a metric-math alarm (the stalled roll) has no single MetricName
        out.setdefault(alarm["Properties"].get("MetricName", ""), []).append(alarm["Properties"])
    return out


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"])
def test_alarm_on_bad_executions(synth: Synth, metric: str) -> None:
    machine_id, _ = synth.roll_machine()
    (alarm,) = _alarms_by_metric(synth)[metric]
    assert alarm["Namespace"] == "AWS/States"
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]


def test_alarm_on_each_lambdas_errors(synth: Synth) -> None:
    alarms = _alarms_by_metric(synth)["Errors"]
    watched = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms if a["Namespace"] == "AWS/Lambda"}
    assert watched == set(synth.resources("AWS::Lambda::Function"))
    assert all(a["AlarmActions"] == [{"Ref": _topic_id(synth)}] for a in alarms)
    assert len(alarms) == len(STEPS)


def test_alarm_on_undeliverable_trigger_events(synth: Synth) -> None:
    (queue_id,) = synth.resources("AWS::SQS::Queue")
    (alarm,) = _alarms_by_metric(synth)["ApproximateNumberOfMessagesVisible"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}


def test_alarms_also_go_to_an_existing_topic(variant: Synth) -> None:
    existing = variant.context["notify_topic_arn"]
    for alarm in variant.resources("AWS::CloudWatch::Alarm").values():
        assert existing in alarm["Properties"]["AlarmActions"]
    assert not variant.resources("AWS::SNS::Subscription")  # no email configured


def test_topic_is_kms_encrypted_ssl_only_and_mailed(synth: Synth) -> None:
    (topic_id, topic), (key_id, key) = (
        *synth.resources("AWS::SNS::Topic").items(),
        *synth.resources("AWS::KMS::Key").items(),
    )
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    # the services that publish may use the key
    principals = {
        s["Principal"].get("Service")
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if "kms:GenerateDataKey*" in s["Action"]
    }
    assert {"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= principals
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    (subscription,) = synth.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == synth.context["notify_email"]
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}


def _status_rule(synth: Synth) -> dict[str, Any]:
    rule: dict[str, Any]
    (rule,) = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    return rule


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
def test_every_execution_status_change_is_notified(synth: Synth, status: str) -> None:
    machine_id, _ = synth.roll_machine()
    rule = _status_rule(synth)
    pattern = json.loads(
        json.dumps(rule["EventPattern"]).replace(json.dumps({"Ref": machine_id}), '"sm-arn"')
    )
    event: dict[str, Any] = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"stateMachineArn": "sm-arn", "status": status, "name": "run-1"},
    }
    assert matches(pattern, event)
    other = {**event, "detail": {**event["detail"], "stateMachineArn": "another-machine"}}
    assert not matches(pattern, other)
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": _topic_id(synth)}
    assert "<detail-status>" in target["InputTransformer"]["InputTemplate"]


def test_dashboard_shows_executions_and_each_step(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "Errors", "Duration"):
        assert metric in body
    for fn_id in synth.resources("AWS::Lambda::Function"):
        assert fn_id in body


def test_dashboard_shows_the_rolls_own_metrics_per_cluster_and_asg(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in Metric:
        search = (
            f"SEARCH('{{{NAMESPACE},{CLUSTER_DIMENSION},{ASG_DIMENSION}}} MetricName=\\\"{metric.value}\\\"'"
        )
        assert json.dumps(search)[1:-1] in body, metric
    for title in ("Nodes replaced", "Evictions refused (429) and failed", "Redis write pause per switchover"):
        assert title in body


def test_stalled_roll_alarm_notifies_when_steps_run_but_no_node_is_replaced(synth: Synth) -> None:
    (alarm,) = [
        a["Properties"]
        for k, a in synth.resources("AWS::CloudWatch::Alarm").items()
        if k.startswith("MonitoringRollStalled")
    ]
    assert alarm["AlarmActions"] == [{"Ref": _topic_id(synth)}]
    assert alarm["Threshold"] == 1 and alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"  # no roll under way: no alarm
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    (expression,) = [q for q in queries.values() if "Expression" in q]
    assert expression["ReturnData"] is True and "FILL(replaced, 0) == 0" in expression["Expression"]
    replaced = queries["replaced"]["MetricStat"]
    assert (
        replaced["Metric"]["Namespace"] == NAMESPACE and replaced["Metric"]["MetricName"] == "NodesReplaced"
    )
    assert "Dimensions" not in replaced["Metric"]  # the roll-up series every roll writes
    assert replaced["Period"] == 30 * 60 and replaced["Stat"] == "Sum"
    # ... "running": the polling steps' Lambdas were invoked in the same window
    polled = {
        q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for q in queries.values()
        if "MetricStat" in q and q["MetricStat"]["Metric"]["MetricName"] == "Invocations"
    }
    functions = synth.resources("AWS::Lambda::Function")
    assert len(polled) == len(ACTIVE_STEPS) and polled <= set(functions)
    assert all(f"a{i}" in expression["Expression"] for i in range(len(ACTIVE_STEPS)))


def test_lock_table(synth: Synth) -> None:
    (table,) = synth.resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "lock_key", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "lock_key", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_only_the_status_rule_may_publish_through_eventbridge(synth: Synth) -> None:
    # no confused deputy: EventBridge may publish only on behalf of this stack's rule
    (rule_id,) = [
        rid
        for rid, r in synth.resources("AWS::Events::Rule").items()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    from_events = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert [s["Condition"] for s in from_events] == [
        {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    ]
    (key,) = synth.resources("AWS::KMS::Key").values()
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if "Service" in statement["Principal"]:
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
            }
