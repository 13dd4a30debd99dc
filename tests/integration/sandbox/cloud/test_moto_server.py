"""The sandbox's moto server wrapper: lifecycle, process-wide settings, reset, routing."""

from __future__ import annotations

import os
import socket
import time
import urllib.request

import pytest
from moto.core.config import default_user_config

from eks_rolling_sandbox.cloud.moto_server import MotoServer


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
