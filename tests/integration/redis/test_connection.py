"""TLS to Redis as the procedures connect: the certificate chain is verified against the group's
CA (from the Secret its annotation names), a server signed by another CA is refused, and the
password never leaves RedisAuth's repr. A real redis-server with a TLS port only."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from eks_rolling.aws.eks_auth import write_pem_file
from eks_rolling.labels import (
    REDIS_GROUP,
    REDIS_KIND,
    REDIS_PASSWORD_SECRET,
    REDIS_PORT,
    REDIS_ROLE,
    REDIS_TLS,
    REDIS_TLS_CA_SECRET,
)
from eks_rolling.redis.connection import RedisAuth, connect, resolve_auth
from eks_rolling.redis.discovery import discover_groups
from eks_rolling_sandbox.api.tls import TlsFiles, make_tls
from eks_rolling_sandbox.redis.procs import wait_until
from tests.factories.redis import requires_redis

pytestmark = [requires_redis]
PASSWORD = "tls-test-password"


@pytest.fixture
def tls_server(ips: Callable[[int], list[str]], tmp_path: Path) -> Iterator[tuple[str, TlsFiles]]:
    (ip,) = ips(1)
    tls = make_tls(tmp_path / "pki", host=ip)
    args = ["redis-server", "--bind", ip, "--port", "0", "--tls-port", "6379"]
    args += ["--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key)]
    args += ["--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no"]
    args += ["--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        good = RedisAuth(password=PASSWORD, tls=True, ca_file=str(tls.ca))

        def answers() -> bool:
            try:
                with connect(ip, REDIS_PORT, good) as r:
                    return bool(r.ping())
            except redis.RedisError:
                return False

        assert wait_until(answers, 10), "the TLS redis-server did not answer"
        yield ip, tls
    finally:
        proc.terminate()
        proc.wait(10)


def _group(**annotations: str) -> object:
    sts = {
        "metadata": {
            "namespace": "redis",
            "name": "redis-master",
            "annotations": {
                REDIS_GROUP: "redis",
                REDIS_KIND: "sentinel",
                REDIS_ROLE: "master",
                REDIS_PASSWORD_SECRET: "redis-auth/password",
                **annotations,
            },
        }
    }
    sentinel = {"metadata": {**sts["metadata"], "name": "redis-sentinel"}}
    sentinel["metadata"]["annotations"] = {
        **sts["metadata"]["annotations"],
        REDIS_ROLE: "sentinel",
    }  # type: ignore[index]
    (group,) = discover_groups([sts, sentinel])
    return group


def test_the_group_ca_from_its_secret_verifies_the_server(tls_server: tuple[str, TlsFiles]) -> None:
    ip, tls = tls_server
    group = _group(**{REDIS_TLS: "true", REDIS_TLS_CA_SECRET: "redis-tls/ca.crt"})
    secrets = {
        ("redis", "redis-auth", "password"): PASSWORD,
        ("redis", "redis-tls", "ca.crt"): tls.ca.read_text(),
    }
    auth = resolve_auth(
        group,  # type: ignore[arg-type]
        read_k8s_secret=lambda ns, name, key: secrets[(ns, name, key)],
        read_sm_secret=lambda arn: pytest.fail("no Secrets Manager here"),
        write_ca=lambda pem: write_pem_file(pem.encode()),
    )
    assert auth.tls and auth.ca_file and Path(auth.ca_file).read_text() == tls.ca.read_text()
    assert PASSWORD not in repr(auth)
    with connect(ip, REDIS_PORT, auth) as r:
        assert r.ping() and r.info("server")["redis_version"]


def test_a_server_signed_by_another_ca_is_refused(tls_server: tuple[str, TlsFiles], tmp_path: Path) -> None:
    ip, _ = tls_server
    other = make_tls(tmp_path / "other-pki", host=ip)
    with (
        pytest.raises(redis.ConnectionError, match="certificate verify failed"),
        connect(ip, REDIS_PORT, RedisAuth(password=PASSWORD, tls=True, ca_file=str(other.ca))) as r,
    ):
        r.ping()
    # ... and without a group CA the system's CAs are used: a private CA is refused too
    with (
        pytest.raises(redis.ConnectionError, match="certificate verify failed"),
        connect(ip, REDIS_PORT, RedisAuth(password=PASSWORD, tls=True)) as r,
    ):
        r.ping()


def test_a_ca_secret_without_tls_is_a_problem_of_the_group() -> None:
    group = _group(**{REDIS_TLS_CA_SECRET: "redis-tls/ca.crt"})
    assert any("without eks-rolling.io/redis-tls" in p for p in group.problems)  # type: ignore[attr-defined]
