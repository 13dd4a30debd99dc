"""The running sandbox is a whole local account and cluster: `eks-rolling-sandbox up` in its own
process, driven only from outside as a user would, with boto3 against the AWS endpoint its env
file names and the `eks-rolling` command. A launch template change starts a roll through the
deployed trigger rule (CloudTrail record -> default bus -> rule -> StartExecution), which
`eks-rolling status --wait` follows to SUCCEEDED; calls no rule matches start nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling.settings import STATE_MACHINE_ARN_VARIABLE
from eks_rolling_sandbox.scenarios import NEW_AMI
from tests.e2e.conftest import FAST

pytestmark = pytest.mark.slow

ASG = "eks-workers"  # the field-report scenario's opted-in group
UP_TIMEOUT_S = 120.0
KUBECTL = shutil.which("kubectl") or "kubectl"  # the e2e environment has kubectl 1.32


def _command(name: str, module: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


@dataclass
class Running:
    env: dict[str, str]  # the env file, as `source` would set it
    log: Path
    kubeconfig: Path

    def aws(self, service: str) -> Any:
        # Only what the env file says: AWS_ENDPOINT_URL, region and credentials.
        return boto3.session.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.env["AWS_SESSION_TOKEN"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        ).client(service, endpoint_url=self.env["AWS_ENDPOINT_URL"])

    def eks_rolling(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_command("eks-rolling", "eks_rolling.cli"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.aws("stepfunctions")
        runs: list[dict[str, Any]] = sfn.list_executions(
            stateMachineArn=self.env[STATE_MACHINE_ARN_VARIABLE], maxResults=100
        )["executions"]
        return runs

    def started_by(self, arn: str) -> dict[str, Any]:
        inp: dict[str, Any] = json.loads(
            self.aws("stepfunctions").describe_execution(executionArn=arn)["input"]
        )
        return inp

    def new_executions(self, before: set[str], count: int, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            new = [r["executionArn"] for r in self.executions() if r["executionArn"] not in before]
            if len(new) >= count or time.monotonic() > deadline:
                return new
            time.sleep(0.2)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("running-sandbox")
    kubeconfig, log = tmp / "kubeconfig", tmp / "sandbox.log"
    settings = [f"--setting={k}={v}" for k, v in FAST.items()]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *_command("eks-rolling-sandbox", "eks_rolling_sandbox.cli"),
                "up",
                f"--kubeconfig={kubeconfig}",
                "--scenario=field-report",
                "--no-redis",
                *settings,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while "Ctrl-C to stop." not in log.read_text():
            assert proc.poll() is None, f"sandbox exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"sandbox not up after {UP_TIMEOUT_S}s:\n{log.read_text()}"
            time.sleep(0.2)
        env = {}
        for line in (tmp / "kubeconfig.env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        yield Running(env, log, kubeconfig)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pinned_version(running: Running) -> tuple[str, str]:
    group = running.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])[
        "AutoScalingGroups"
    ][0]
    return group["LaunchTemplate"]["LaunchTemplateId"], group["LaunchTemplate"]["Version"]


def test_calls_no_rule_matches_start_nothing(running: Running) -> None:
    # Given the running sandbox and its group's launch template
    lt_id, pinned = _pinned_version(running)
    before = {r["executionArn"] for r in running.executions()}
    ec2, asg = running.aws("ec2"), running.aws("autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0]
    # When calls that change no launch template in use are sent (each is a CloudTrail record)
    asg.update_auto_scaling_group(AutoScalingGroupName=ASG, MaxSize=group["MaxSize"])  # capacity only
    asg.create_or_update_tags(
        Tags=[
            {
                "ResourceId": ASG,
                "ResourceType": "auto-scaling-group",
                "Key": "team",
                "Value": "platform",
                "PropagateAtLaunch": False,
            }
        ]
    )
    with pytest.raises(ec2.exceptions.ClientError):  # a failed call: recorded with errorCode
        ec2.create_launch_template_version(
            LaunchTemplateId="lt-0000000000000dead",
            SourceVersion="1",
            LaunchTemplateData={"ImageId": NEW_AMI},
        )
    # and then one that the LaunchTemplateVersionCreated rule matches: the bus delivers in order,
    # so once its execution exists, every call before it was matched and started nothing
    ec2.create_launch_template_version(
        LaunchTemplateId=lt_id, SourceVersion=pinned, LaunchTemplateData={"ImageId": NEW_AMI}
    )
    new = running.new_executions(before, 1)
    time.sleep(1.0)  # room for a wrongly started execution to show up
    new = running.new_executions(before, 99, timeout=0)
    # Then exactly one execution started, by the matching call
    assert len(new) == 1, [running.started_by(a)["detail"]["eventName"] for a in new]
    event = running.started_by(new[0])
    assert event["detail-type"] == "AWS API Call via CloudTrail"
    assert event["detail"]["eventName"] == "CreateLaunchTemplateVersion"
    assert (
        event["detail"]["requestParameters"]["CreateLaunchTemplateVersionRequest"]["LaunchTemplateId"]
        == lt_id
    )
    # and, the group pinning a version rather than following $Latest, it rolls nothing
    done = running.eks_rolling("status", "--wait", "--interval=0.5", "--timeout=60", new[0], timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stdout
    assert "NothingToDo" in done.stdout


def test_a_launch_template_change_rolls_the_group(running: Running) -> None:
    # Given the running sandbox, its group on a pinned launch template version
    lt_id, pinned = _pinned_version(running)
    asg, ec2 = running.aws("autoscaling"), running.aws("ec2")
    old = {
        i["InstanceId"]
        for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0][
            "Instances"
        ]
    }
    before = {r["executionArn"] for r in running.executions()}
    # and `eks-rolling plan` (with the env file's settings) sees nothing to do yet
    plan = running.eks_rolling("plan", f"--asg={ASG}", timeout=60)
    assert plan.returncode == 0 and "nothing to do" in plan.stdout, plan.stdout + plan.stderr
    # and `kubectl get nodes -w` watching
    watch = subprocess.Popen(
        [KUBECTL, f"--kubeconfig={running.kubeconfig}", "get", "nodes", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # When an operator creates a version and points the group at it, with boto3
    version = ec2.create_launch_template_version(
        LaunchTemplateId=lt_id, SourceVersion=pinned, LaunchTemplateData={"ImageId": NEW_AMI}
    )["LaunchTemplateVersion"]["VersionNumber"]
    asg.update_auto_scaling_group(
        AutoScalingGroupName=ASG, LaunchTemplate={"LaunchTemplateId": lt_id, "Version": str(version)}
    )
    # Then the AsgLaunchTemplateChanged rule starts a roll with the CloudTrail event as its input
    new = running.new_executions(before, 2)
    by_call = {running.started_by(arn)["detail"]["eventName"]: arn for arn in new}
    assert sorted(by_call) == ["CreateLaunchTemplateVersion", "UpdateAutoScalingGroup"]
    roll = by_call["UpdateAutoScalingGroup"]
    # which `eks-rolling status --wait` follows to SUCCEEDED
    t0 = time.monotonic()
    done = running.eks_rolling("status", "--wait", "--interval=1", "--timeout=240", roll, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr + running.log.read_text()[-3000:]
    statuses = [line.split()[0] for line in done.stdout.splitlines() if line and not line[0].isspace()]
    assert statuses[0] == "RUNNING" and statuses[-1] == "SUCCEEDED", done.stdout
    print(f"roll followed to SUCCEEDED in {time.monotonic() - t0:.1f}s")
    # and kubectl's watch, still running, showed the new nodes join and the old ones leave
    still_watching = watch.poll() is None
    watch.kill()
    rows = [line.split() for line in watch.communicate()[0].splitlines()]
    assert still_watching, rows
    assert rows[0][:2] == ["NAME", "STATUS"] and all(r[0] != "NAME" for r in rows[1:]), rows
    # and every instance of the group now runs the new version, none of the old ones is left
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0]
    assert group["Instances"] and not old & {i["InstanceId"] for i in group["Instances"]}
    state = AsgOps(asg, ec2).describe(ASG)
    assert state.target_version == str(version)
    assert not [i.instance_id for i in state.instances if AsgOps.is_outdated(i, state)]
    ids = [i["InstanceId"] for i in group["Instances"]]
    nodes = {
        n["PrivateDnsName"]
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for n in r["Instances"]
    }
    assert nodes <= {r[0] for r in rows}, rows
    images = {
        i["ImageId"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]
    }
    assert images == {NEW_AMI}
