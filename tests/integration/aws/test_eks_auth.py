"""EKS bearer tokens and cluster endpoints, checked against moto and against SigV4 itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from eks_rolling.aws.clients import aws_client
from eks_rolling.aws.eks_auth import (
    ClusterEndpoint,
    describe_cluster,
    get_token,
    kube_connection,
    write_ca_file,
)
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.moto_server import DUMMY_SECRET_KEY, MotoServer

CLUSTER = "demo"
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def decode(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def sigv4_query_signature(url: str, headers: dict[str, str], secret: str) -> str:
    """Recompute a query-signed SigV4 signature from scratch (AWS's documented algorithm)."""
    parts = urlsplit(url)
    params = query(url)
    params.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    all_headers = {"host": parts.netloc, **{k.lower(): v.strip() for k, v in headers.items()}}
    signed = params["X-Amz-SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{all_headers[name]}\n" for name in signed)
    canonical_request = "\n".join(
        [
            "GET",
            parts.path or "/",
            canonical_query,
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    _, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def sts(clients: dict[str, Any]) -> Any:
    return clients["sts"]


def test_token_is_a_presigned_get_caller_identity_url(sts: Any, moto: MotoServer) -> None:
    url = decode(get_token(sts, CLUSTER))

    q = query(url)
    assert url.startswith(moto.endpoint_url + "/?")
    assert q["Action"] == "GetCallerIdentity"
    assert q["Version"] == "2011-06-15"
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-Expires"] == "60"
    assert q["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert q["X-Amz-Credential"].endswith("/us-east-1/sts/aws4_request")
    assert "x-k8s-aws-id" not in q  # a header, not a query parameter


def test_signature_covers_the_cluster_header(sts: Any) -> None:
    url = decode(get_token(sts, CLUSTER))
    signature = query(url)["X-Amz-Signature"]

    assert sigv4_query_signature(url, {"x-k8s-aws-id": CLUSTER}, DUMMY_SECRET_KEY) == signature
    # The same URL replayed for another cluster does not verify: that is what EKS relies on.
    assert sigv4_query_signature(url, {"x-k8s-aws-id": "other"}, DUMMY_SECRET_KEY) != signature


def test_tokens_for_two_clusters_from_one_client_are_each_signed_for_their_cluster(sts: Any) -> None:
    first, second = decode(get_token(sts, "alpha")), decode(get_token(sts, "beta"))

    for url, cluster in ((first, "alpha"), (second, "beta")):
        assert (
            sigv4_query_signature(url, {"x-k8s-aws-id": cluster}, DUMMY_SECRET_KEY)
            == query(url)["X-Amz-Signature"]
        )


def test_presigned_url_is_answered_by_moto_sts(sts: Any) -> None:
    url = decode(get_token(sts, CLUSTER))

    req = urllib.request.Request(url, headers={"x-k8s-aws-id": CLUSTER}, method="GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        status, body = resp.status, resp.read()

    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == f"{STS_NS}GetCallerIdentityResponse"
    arn = root.findtext(f"{STS_NS}GetCallerIdentityResult/{STS_NS}Arn")
    assert arn is not None
    assert arn.startswith("arn:aws:")


def test_real_region_token_uses_the_regional_sts_endpoint() -> None:
    # Presigning is local: no network, no AWS account.
    sts = aws_client("sts", Settings(region="eu-west-1"))

    url = decode(get_token(sts, CLUSTER))

    assert urlsplit(url).netloc == "sts.eu-west-1.amazonaws.com"
    assert "/eu-west-1/sts/aws4_request" in query(url)["X-Amz-Credential"]
    assert (
        sigv4_query_signature(url, {"x-k8s-aws-id": CLUSTER}, DUMMY_SECRET_KEY)
        == query(url)["X-Amz-Signature"]
    )


def test_sandbox_override_skips_describe_cluster_but_still_signs_a_token(
    settings: Settings, clients: dict[str, Any]
) -> None:
    sandbox = settings.model_copy(
        update={"kube_api_url": "https://127.0.0.1:6443", "kube_ca_file": "/tmp/sandbox-ca.pem"}
    )

    # No EKS cluster exists in moto: a DescribeCluster call would fail.
    conn = kube_connection(sandbox, CLUSTER, eks_client=clients["eks"], sts_client=clients["sts"])

    assert (conn.url, conn.ca_file) == ("https://127.0.0.1:6443", "/tmp/sandbox-ca.pem")
    assert query(decode(conn.token))["Action"] == "GetCallerIdentity"
    assert conn.token not in repr(conn)


def test_connection_from_describe_cluster_writes_the_ca_once(
    settings: Settings, clients: dict[str, Any], moto: MotoServer
) -> None:
    moto.client("eks").create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": []},
    )
    expected = moto.client("eks").describe_cluster(name=CLUSTER)["cluster"]

    first = kube_connection(settings, CLUSTER, eks_client=clients["eks"], sts_client=clients["sts"])
    again = kube_connection(settings, CLUSTER, eks_client=clients["eks"], sts_client=clients["sts"])

    assert first.url == expected["endpoint"]
    assert first.ca_file is not None
    assert Path(first.ca_file).read_bytes() == base64.b64decode(expected["certificateAuthority"]["data"])
    assert again.ca_file == first.ca_file
    assert describe_cluster(clients["eks"], CLUSTER) == ClusterEndpoint(
        url=expected["endpoint"], ca_data=expected["certificateAuthority"]["data"]
    )


def test_ca_files_are_per_bundle() -> None:
    one = write_ca_file(base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAAA\n").decode())
    two = write_ca_file(base64.b64encode(b"-----BEGIN CERTIFICATE-----\nBBB\n").decode())

    assert one != two
    assert Path(one).read_bytes().endswith(b"AAA\n")
    assert Path(two).read_bytes().endswith(b"BBB\n")


def test_unknown_cluster_is_reported_by_aws(clients: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as info:
        describe_cluster(clients["eks"], "nope")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
