"""The sandbox's moto server wrapper: lifecycle, process-wide settings, reset, routing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from moto import backends
from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from eks_rolling_sandbox.cloud.moto_server import LISTEN_BACKLOG, MotoServer


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# The module's shared server (conftest) is running during these tests, so each one checks that
# process-wide state comes back to what it was: pointing at that server.
def test_start_stop_repeatedly_and_release_the_port(moto: MotoServer) -> None:
    saved_port = os.environ.get("MOTO_PORT")
    saved_sfn = default_user_config.get("stepfunctions")
    assert saved_port == str(moto.port)
    for _ in range(3):
        server = MotoServer()
        with server:
            port = server.port
            assert port != moto.port
            assert server.endpoint_url == f"http://127.0.0.1:{port}"
            assert os.environ["MOTO_PORT"] == str(port)
            assert default_user_config["stepfunctions"] == {"execute_state_machine": True}
            assert default_user_config["lambda"] == {"use_docker": False}
            assert server.client("sts").get_caller_identity()["Account"] == "123456789012"
        assert not server.running
        assert port_is_free(port)
        assert os.environ.get("MOTO_PORT") == saved_port
        assert default_user_config.get("stepfunctions") == saved_sfn
    server.stop()  # stopping twice is harmless


def test_nested_servers_keep_moto_port_on_a_live_one(moto: MotoServer) -> None:
    with MotoServer() as outer:
        with MotoServer() as inner:
            assert inner.port != outer.port
            assert os.environ["MOTO_PORT"] == str(inner.port)
        assert os.environ["MOTO_PORT"] == str(outer.port)
    assert os.environ["MOTO_PORT"] == str(moto.port)


def test_port_is_unavailable_when_stopped() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = MotoServer().endpoint_url


def test_reset_forgets_resources(moto: MotoServer) -> None:
    ddb = moto.client("dynamodb")
    ddb.create_table(
        TableName="t",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert ddb.list_tables()["TableNames"] == ["t"]

    moto.reset()

    assert ddb.list_tables()["TableNames"] == []


def test_regions_are_separate(moto: MotoServer) -> None:
    moto.client("autoscaling", region="eu-west-1").create_launch_configuration(
        LaunchConfigurationName="lc", ImageId="ami-12345678", InstanceType="t3.small"
    )
    assert moto.client("autoscaling").describe_launch_configurations()["LaunchConfigurations"] == []


def test_unsigned_requests_still_reach_s3(moto: MotoServer) -> None:
    # The presigned-URL routing shim must not change moto's default for plain requests.
    moto.client("s3").create_bucket(Bucket="sandbox-bucket")
    with urllib.request.urlopen(moto.endpoint_url + "/", timeout=10) as resp:
        assert b"<Name>sandbox-bucket</Name>" in resp.read()


def test_the_call_log_names_every_protocols_action_and_tells_writes_from_reads(moto: MotoServer) -> None:
    # Given calls over the query (Auto Scaling, EC2), JSON (DynamoDB) and REST (Lambda) protocols
    since = time.time()
    asg = moto.client("autoscaling")
    asg.create_launch_configuration(
        LaunchConfigurationName="log-lc", ImageId="ami-12345678", InstanceType="t3.small"
    )
    asg.describe_launch_configurations()
    moto.client("ec2").describe_instances()
    moto.client("dynamodb").list_tables()
    moto.client("lambda").list_functions()
    # Then each is logged with its service and action, and only the create is a write
    calls = [(c.service, c.action, c.is_write) for c in moto.calls.calls(since)]
    assert calls == [
        ("autoscaling", "CreateLaunchConfiguration", True),
        ("autoscaling", "DescribeLaunchConfigurations", False),
        ("ec2", "DescribeInstances", False),
        ("dynamodb", "ListTables", False),
        ("lambda", "GET /2015-03-31/functions", False),
    ]
    assert [c.action for c in moto.calls.writes(since)] == ["CreateLaunchConfiguration"]
    # ... and the form body moto reads after the log read it is intact (the create took effect)
    names = [
        lc["LaunchConfigurationName"] for lc in asg.describe_launch_configurations()["LaunchConfigurations"]
    ]
    assert "log-lc" in names


def _race_to_double(server: MotoServer, name: str, n: int, writers: int = 6) -> tuple[int, int, int]:
    """A group of n instances that `writers` threads set to 2n at once: (desired, instances, HTTP
    errors). Waves together do this: every child's SurgeCapacity sets one absolute floor."""
    lt = server.client("ec2").create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg = server.client("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": lt},
        MinSize=0,
        MaxSize=4 * n,
        DesiredCapacity=n,
        AvailabilityZones=["us-east-1a"],
    )
    clients = [server.client("autoscaling") for _ in range(writers)]
    start, errors = threading.Barrier(writers), []

    def surge(c: Any) -> None:
        start.wait()
        try:
            c.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2 * n)
        except Exception as exc:  # moto's 500 on a list changed under it, counted
            errors.append(exc)

    threads = [threading.Thread(target=surge, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return group["DesiredCapacity"], len(group["Instances"]), len(errors)


def test_auto_scaling_calls_are_atomic_under_concurrent_writers(moto: MotoServer) -> None:
    # Given six concurrent SetDesiredCapacity calls to the same floor, three times over
    for k in range(3):
        # Then the group has exactly that many instances and every call succeeded
        assert _race_to_double(moto, f"atomic-{k}", 150) == (300, 300, 0)


def test_control_moto_alone_loses_concurrent_auto_scaling_writes(moto: MotoServer) -> None:
    # Control: served as moto serves them, the same calls launch too many instances or fail with
    # HTTP 500 (measured: 4 of 5 tries at 300 instances, 5 of 8 at 100); 8 tries all clean would
    # mean the test above no longer tests anything.
    with MotoServer(atomic=frozenset()) as raw:
        outcomes = []
        for k in range(8):
            desired, instances, errors = _race_to_double(raw, f"raw-{k}", 150)
            outcomes.append((desired, instances, errors))
            if instances != desired or errors:
                break
    assert outcomes[-1][1] != outcomes[-1][0] or outcomes[-1][2], outcomes


def _listings(calls: Callable[[], None]) -> int:
    """How often moto lists its package directory (a stat per service) while `calls` runs."""
    real, listed = backends.list_of_moto_modules, []

    def counted() -> Any:
        listed.append(1)
        return real()

    with mock.patch.object(backends, "list_of_moto_modules", counted):
        calls()
    return len(listed)


def test_a_hosts_backend_is_looked_up_once_not_per_request() -> None:
    # Given a fresh server (its dispatcher has looked nothing up yet)
    with MotoServer() as server:
        asg = server.client("autoscaling")
        # When twenty requests reach one service
        n = _listings(lambda: [asg.describe_auto_scaling_groups() for _ in range(20)])
    # Then moto listed its package once, under the lock every request of every service takes
    assert n == 1
    # ... where moto's own dispatcher lists it for every request: the control
    dispatcher = DomainDispatcherApplication(create_app=lambda backend: None)  # type: ignore[arg-type,return-value]
    host = "autoscaling.us-east-1.amazonaws.com"
    assert _listings(lambda: [dispatcher.get_backend_for_host(host) for _ in range(20)]) == 20


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a listen backlog")
def test_the_server_queues_as_many_connects_as_the_kernel_allows(moto: MotoServer) -> None:
    # ss shows a listening socket's backlog as its Send-Q (werkzeug's own is 128)
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{moto.port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[2]) == LISTEN_BACKLOG, out
