"""Bad input, end to end: malformed and foreign inputs through the real state machine.

Each row starts an execution of the real ASL (moto's interpreter, the real ResolveTarget handler)
on one field-report sandbox, and must end in a NAMED error (FAILED, `error` one of our error
classes) or a SKIP (SUCCEEDED, no target, a reason per skipped group), never `Lambda.Unknown` or a
bare KeyError/TypeError/ValidationError/ClientError. And it must write nothing: no mutating request
in the Kubernetes API server's request log, no AWS call but reads in moto's call log (the test's
own StartExecution aside). The tool writes nothing for a skipped input either: not even the lock,
which is taken per target group, and a skipped trigger has none.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from eks_rolling.errors import EksRollingError, error_names
from eks_rolling.labels import TAG_OPT_IN
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.scenarios import Scenario, cloudtrail_update_asg_event, field_report
from tests.e2e.conftest import FAST, states_entered

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bad-input")]

SKIPPED = "SKIPPED"
STATE_LIMIT = 256 * 1024  # bytes of UTF-8: Step Functions' limit on any state's input or output
ACCOUNT, OTHER_ACCOUNT = "123456789012", "210987654321"
NOT_OPTED_IN = "eks-system"  # the field-report's system node group has no opt-in tag
ORPHAN = "eks-orphan"  # opted in, but someone deleted its launch template

EXPECTED: dict[str, str] = {
    # events from AWS's own schemas for other API calls and other event types
    "cloudtrail-terminate-instances": "InvalidInputError",
    "cloudtrail-create-auto-scaling-group": "InvalidInputError",
    "cloudtrail-delete-launch-template": "InvalidInputError",
    "ec2-instance-state-change-notification": "InvalidInputError",
    "asg-lifecycle-action-naming-our-group": "InvalidInputError",
    # truncated
    "update-asg-cut-before-request-parameters": "InvalidInputError",
    "envelope-cut-before-detail": "InvalidInputError",
    "event-without-detail-type": "InvalidInputError",
    # wrong types
    "detail-is-a-string": "InvalidInputError",
    "group-name-is-a-number": "InvalidInputError",
    "manual-dry-run-is-the-string-false": "InvalidInputError",
    "input-is-an-array": "InvalidInputError",
    "input-is-a-string": "InvalidInputError",
    "input-is-null": "InvalidInputError",
    # size: 1 KiB under the 256 KiB execution input limit
    "foreign-event-of-255-kib": "InvalidInputError",
    # names
    "manual-unicode-name-that-does-not-exist": "AsgNotFoundError",
    "event-unicode-name-that-does-not-exist": SKIPPED,
    "manual-name-with-a-control-character": "InvalidInputError",
    "event-group-name-of-300-characters": "InvalidInputError",
    "manual-group-that-does-not-exist": "AsgNotFoundError",
    "event-group-not-opted-in": SKIPPED,
    "manual-group-not-opted-in": "AsgNotOptedInError",
    "manual-group-whose-launch-template-was-deleted": "LaunchTemplateNotFoundError",
    "event-group-whose-launch-template-was-deleted": "LaunchTemplateNotFoundError",
    # other accounts and regions
    "manual-arn-of-another-account": "InvalidInputError",
    "event-from-another-account-naming-our-group": "InvalidInputError",
    "event-from-another-region-naming-our-group": "InvalidInputError",
    # manual input
    "manual-unknown-key-dryrun-typo": "InvalidInputError",
    "empty-object": "InvalidInputError",
}

OUR_ERRORS = frozenset(error_names(EksRollingError))


# --- inputs --------------------------------------------------------------------------------------
def _cloudtrail(
    source: str,
    event_source: str,
    event_name: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    *,
    region: str,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail" envelope, as AWS delivers it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": account,
        "time": now,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:ops",
                "arn": f"arn:aws:sts::{account}:assumed-role/ops/ops",
                "accountId": account,
            },
            "eventTime": now,
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": region,
            "sourceIPAddress": "192.0.2.10",
            "userAgent": "aws-cli/2.22.4",
            "requestParameters": request,
            "responseElements": response,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        },
    }


def _terminate_instances(s: Scenario, count: int = 1) -> dict[str, Any]:
    ids = [f"i-{n:017x}" for n in range(count)]
    return _cloudtrail(
        "aws.ec2",
        "ec2.amazonaws.com",
        "TerminateInstances",
        {"instancesSet": {"items": [{"instanceId": i} for i in ids]}},
        {
            "requestId": str(uuid.uuid4()),
            "instancesSet": {
                "items": [
                    {
                        "instanceId": i,
                        "currentState": {"code": 32, "name": "shutting-down"},
                        "previousState": {"code": 16, "name": "running"},
                    }
                    for i in ids
                ]
            },
        },
        region=s.env.region,
    )


def _create_asg(s: Scenario) -> dict[str, Any]:
    return _cloudtrail(
        "aws.autoscaling",
        "autoscaling.amazonaws.com",
        "CreateAutoScalingGroup",
        {
            "autoScalingGroupName": s.asg_name,
            "launchTemplate": {"launchTemplateId": s.launch_template_id, "version": "$Latest"},
            "minSize": 1,
            "maxSize": 8,
            "vPCZoneIdentifier": "subnet-0a1b2c3d,subnet-4e5f6a7b",
        },
        region=s.env.region,
    )


def _delete_launch_template(s: Scenario) -> dict[str, Any]:
    lt = {"launchTemplateId": s.launch_template_id, "launchTemplateName": s.asg_name}
    return _cloudtrail(
        "aws.ec2",
        "ec2.amazonaws.com",
        "DeleteLaunchTemplate",
        {"DeleteLaunchTemplateRequest": {"LaunchTemplateId": s.launch_template_id}},
        {"DeleteLaunchTemplateResponse": {"launchTemplate": {**lt, "defaultVersionNumber": 2}}},
        region=s.env.region,
    )


def _ec2_state_change(s: Scenario) -> dict[str, Any]:
    instance = "i-0123456789abcdef0"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": "2026-12-06T10:00:00Z",
        "region": s.env.region,
        "resources": [f"arn:aws:ec2:{s.env.region}:{ACCOUNT}:instance/{instance}"],
        "detail": {"instance-id": instance, "state": "terminated"},
    }


def _lifecycle_action(s: Scenario) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance-terminate Lifecycle Action",
        "source": "aws.autoscaling",
        "account": ACCOUNT,
        "time": "2026-12-06T10:00:00Z",
        "region": s.env.region,
        "resources": [
            f"arn:aws:autoscaling:{s.env.region}:{ACCOUNT}:autoScalingGroup:x:autoScalingGroupName/{s.asg_name}"
        ],
        "detail": {
            "LifecycleActionToken": str(uuid.uuid4()),
            "AutoScalingGroupName": s.asg_name,
            "LifecycleHookName": "drain",
            "EC2InstanceId": "i-0123456789abcdef0",
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        },
    }


def _update_asg(s: Scenario, name: str | None = None, **kw: str) -> dict[str, Any]:
    region = kw.get("region", s.env.region)
    event = cloudtrail_update_asg_event(name or s.asg_name, s.launch_template_id, "2", region=region)
    if "account" in kw:
        event["account"] = event["detail"]["recipientAccountId"] = kw["account"]
        event["detail"]["userIdentity"]["accountId"] = kw["account"]
    return event


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(event)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def _replace(event: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    out = copy.deepcopy(event)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _cut(event: dict[str, Any], *path: str) -> dict[str, Any]:
    """`event` as a writer cut off mid-record leaves it: every key from `path[-1]` on is missing
    (keys in their order in the record, nested along `path`)."""
    head, *rest = path
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key == head:
            if rest:
                out[key] = _cut(value, *rest)
            break
        out[key] = value
    return out


def _padded_to(event: dict[str, Any], size: int) -> dict[str, Any]:
    """`event` with CloudTrail-shaped filler in responseElements, `size` bytes as UTF-8 JSON."""
    out = copy.deepcopy(event)
    out["detail"]["responseElements"]["padding"] = ""
    missing = size - len(json.dumps(out).encode())
    out["detail"]["responseElements"]["padding"] = "x" * missing
    assert len(json.dumps(out).encode()) == size
    return out


Build = Callable[[Scenario], Any]

ROWS: dict[str, Build] = {
    "cloudtrail-terminate-instances": _terminate_instances,
    "cloudtrail-create-auto-scaling-group": _create_asg,
    "cloudtrail-delete-launch-template": _delete_launch_template,
    "ec2-instance-state-change-notification": _ec2_state_change,
    "asg-lifecycle-action-naming-our-group": _lifecycle_action,
    "update-asg-cut-before-request-parameters": lambda s: _cut(_update_asg(s), "detail", "requestParameters"),
    "envelope-cut-before-detail": lambda s: _cut(_update_asg(s), "detail"),
    "event-without-detail-type": lambda s: _without(_update_asg(s), "detail-type"),
    "detail-is-a-string": lambda s: _replace(_update_asg(s), json.dumps(_update_asg(s)["detail"]), "detail"),
    "group-name-is-a-number": lambda s: _replace(
        _update_asg(s), 42, "detail", "requestParameters", "autoScalingGroupName"
    ),
    "manual-dry-run-is-the-string-false": lambda s: {"asgName": s.asg_name, "dryRun": "false"},
    "input-is-an-array": lambda s: [_update_asg(s)],
    "input-is-a-string": lambda s: s.asg_name,
    "input-is-null": lambda s: None,
    "foreign-event-of-255-kib": lambda s: _padded_to(_terminate_instances(s, 200), STATE_LIMIT - 1024),
    "manual-unicode-name-that-does-not-exist": lambda s: {"asgName": "prod-wörker-節点-🚀"},
    "event-unicode-name-that-does-not-exist": lambda s: _update_asg(s, "prod-wörker-節点-🚀"),
    "manual-name-with-a-control-character": lambda s: {"asgName": s.asg_name + "\u0000"},
    "event-group-name-of-300-characters": lambda s: _update_asg(s, "g" * 300),
    "manual-group-that-does-not-exist": lambda s: {"asgName": "no-such-group"},
    "event-group-not-opted-in": lambda s: _update_asg(s, NOT_OPTED_IN),
    "manual-group-not-opted-in": lambda s: {"asgName": NOT_OPTED_IN},
    "manual-group-whose-launch-template-was-deleted": lambda s: {"asgName": ORPHAN},
    "event-group-whose-launch-template-was-deleted": lambda s: _update_asg(s, ORPHAN),
    "manual-arn-of-another-account": lambda s: {
        "asgName": f"arn:aws:autoscaling:{s.env.region}:{OTHER_ACCOUNT}:autoScalingGroup:"
        f"{uuid.uuid4()}:autoScalingGroupName/{s.asg_name}"
    },
    "event-from-another-account-naming-our-group": lambda s: _update_asg(s, account=OTHER_ACCOUNT),
    "event-from-another-region-naming-our-group": lambda s: _update_asg(s, region="eu-west-1"),
    "manual-unknown-key-dryrun-typo": lambda s: {"asgName": s.asg_name, "dryrun": True},
    "empty-object": lambda s: {},
}


# --- the bench: one sandbox and one deployed state machine for every row --------------------------
@dataclass
class Bench:
    env: SandboxEnv
    scenario: Scenario
    runner: LocalRunner


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with SandboxEnv() as env:
        scenario = field_report(env, redis=False)
        _orphan_group(env, scenario)
        with LocalRunner(env, time_scale=0.05, settings=FAST) as runner:
            yield Bench(env, scenario, runner)


def _orphan_group(env: SandboxEnv, scenario: Scenario) -> None:
    """An empty, opted-in group whose launch template was deleted after the group was made."""
    ec2, asg = env.aws("ec2"), env.aws("autoscaling")
    lt = ec2.create_launch_template(
        LaunchTemplateName=ORPHAN,
        LaunchTemplateData={"ImageId": scenario.old_ami, "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    tags = {TAG_OPT_IN: "true", f"kubernetes.io/cluster/{env.cluster_name}": "owned"}
    asg.create_auto_scaling_group(
        AutoScalingGroupName=ORPHAN,
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"},
        AvailabilityZones=list(scenario.azs),
        Tags=[
            {
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": False,
                "ResourceId": ORPHAN,
                "ResourceType": "auto-scaling-group",
            }
            for k, v in tags.items()
        ],
    )
    ec2.delete_launch_template(LaunchTemplateId=lt)


@dataclass
class Outcome:
    status: str
    error: str | None
    cause: str
    output: dict[str, Any] | None
    history: list[dict[str, Any]]
    aws_writes: list[str]
    kube_writes: list[str]
    invoked: list[str]


def _run(bench: Bench, payload: Any, *, stop_when: Callable[[float], bool] | None = None) -> Outcome:
    """Run `payload` to its end (or, with `stop_when(since)`, until that holds, then stop it) and
    collect what it did."""
    env, runner = bench.env, bench.runner
    since = time.time()
    invocations_before = len(runner.stats.invocations)
    arn = runner.start(payload)
    if stop_when is not None:
        env.sandbox.wait_for(lambda: stop_when(since), timeout=60, what="the condition to stop at")
        env.aws("stepfunctions").stop_execution(executionArn=arn, error="BadInputTest")
    try:
        result = runner.wait(arn, timeout=60)
    except TimeoutError:
        # A row that wrongly starts a real roll: stop it so the next rows see the same sandbox.
        env.aws("stepfunctions").stop_execution(executionArn=arn, error="BadInputTest")
        result = runner.wait(arn, timeout=60)
    history = runner.history(arn)
    output = json.loads(result["output"]) if result.get("output") else None
    aws_writes = [
        f"{c.service}:{c.action}"
        for c in env.moto.calls.writes(since)
        if not (c.service == "states" and c.action == "StartExecution")
    ]
    kube_writes = [f"{e.method} {e.path}" for e in env.sandbox.request_log.writes(since)]
    invoked = sorted({i.function for i in runner.stats.invocations[invocations_before:]})
    return Outcome(
        result["status"],
        result.get("error"),
        result.get("cause") or "",
        output if isinstance(output, dict) else None,
        history,
        aws_writes,
        kube_writes,
        invoked,
    )


def _is_skip(o: Outcome) -> bool:
    """SUCCEEDED with no target and a reason for each skipped group."""
    if o.status != "SUCCEEDED" or o.output is None:
        return False
    skipped = o.output.get("skipped") or []
    return not o.output.get("targets") and bool(skipped) and all(s.get("reason") for s in skipped)


def _largest_state_data(history: list[dict[str, Any]]) -> int:
    sizes = [0]
    for ev in history:
        for key, details in ev.items():
            if key.endswith("EventDetails") and isinstance(details, dict):
                for field_name in ("input", "output", "parameters"):
                    if isinstance(details.get(field_name), str):
                        sizes.append(len(details[field_name].encode()))
    return max(sizes)


@pytest.mark.parametrize("row", list(EXPECTED))
def test_bad_input_ends_named_or_skipped_and_writes_nothing(bench: Bench, row: str) -> None:
    # Given a malformed or foreign input
    payload = ROWS[row](bench.scenario)
    # When it is the input of an execution of the real state machine
    o = _run(bench, payload)
    # Then nothing was written, to Kubernetes or to AWS ...
    assert o.kube_writes == [], o.kube_writes
    assert o.aws_writes == [], o.aws_writes
    # ... only ResolveTarget ran, and no state's data outgrew Step Functions' limit
    assert [n for n in o.invoked if "resolve-target" not in n] == [], o.invoked
    assert "RollEachAsg" not in [name for name, _ in states_entered(o.history)]
    assert _largest_state_data(o.history) <= STATE_LIMIT
    # ... and it ended named or skipped, never with an uncaught exception
    failures = [
        ev["lambdaFunctionFailedEventDetails"]["error"]
        for ev in o.history
        if "lambdaFunctionFailedEventDetails" in ev
    ]
    assert set(failures) <= OUR_ERRORS, failures
    expected = EXPECTED[row]
    assert _ended(o, expected), (o.status, o.error, o.cause[:300], o.output)
    if expected != SKIPPED:
        assert 0 < len(o.cause) < 4096  # says what was wrong, never echoes a huge input back


def _ended(o: Outcome, expected: str) -> bool:
    if expected == SKIPPED:
        return _is_skip(o)
    return (o.status, o.error) == ("FAILED", expected)


# Last in the file (it leaves a roll stopped half-way): the checks above can fail.
def test_the_write_checks_see_the_writes_of_a_real_roll(bench: Bench) -> None:
    # Given a real trigger: the group moved to a new launch template version
    event = bench.scenario.bump_launch_template()
    # When it runs until its first write to Kubernetes, then is stopped
    o = _run(bench, event, stop_when=lambda since: bool(bench.env.sandbox.request_log.writes(since)))
    # Then the same checks that found no write for every bad input see this run's writes
    assert o.kube_writes, o.kube_writes
    assert "dynamodb:PutItem" in o.aws_writes, o.aws_writes  # the lock
    assert "RollEachAsg" in [name for name, _ in states_entered(o.history)]
