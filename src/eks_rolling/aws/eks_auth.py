"""How to reach and authenticate to an EKS cluster's API server.

The bearer token is what `aws eks get-token` / aws-iam-authenticator produce: a presigned STS
GetCallerIdentity URL, with the cluster name in the signed `x-k8s-aws-id` header, base64url
encoded. EKS validates it by replaying the URL against STS, so no AWS credentials ever reach the
Kubernetes API server.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from eks_rolling.aws.clients import aws_errors
from eks_rolling.errors import KubeApiUnavailableError
from eks_rolling.settings import Settings

log = logging.getLogger(__name__)

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_EXPIRES_S = 60  # what aws-cli signs; EKS itself accepts the token for 15 minutes

_HOOK_PARAMS = "provide-client-params.sts.GetCallerIdentity"
_HOOK_SIGN = "before-sign.sts.GetCallerIdentity"


@dataclass(frozen=True)
class ClusterEndpoint:
    url: str
    ca_data: str | None  # base64 PEM, as DescribeCluster returns it


@dataclass(frozen=True)
class KubeConnection:
    url: str
    token: str = field(repr=False)  # a credential: keep it out of logs and tracebacks
    ca_file: str | None = None


def describe_cluster(eks_client: Any, name: str) -> ClusterEndpoint:
    with aws_errors():
        cluster = eks_client.describe_cluster(name=name)["cluster"]
    url = cluster.get("endpoint")
    if not url:
        # A cluster still CREATING has no endpoint yet; the step may succeed later.
        raise KubeApiUnavailableError(
            f"EKS cluster {name!r} has no endpoint (status {cluster.get('status')})"
        )
    ca_data = (cluster.get("certificateAuthority") or {}).get("data") or None
    return ClusterEndpoint(url=url, ca_data=ca_data)


def _move_param_to_context(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # Not an API parameter: park it in the request context before botocore validates params.
    if K8S_AWS_ID_HEADER in params:
        context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)


def _add_header_before_signing(request: Any, **_: Any) -> None:
    # Added before signing, so SigV4 lists it in X-Amz-SignedHeaders and EKS can check it.
    cluster = request.context.get(K8S_AWS_ID_HEADER)
    if cluster is not None:
        request.headers[K8S_AWS_ID_HEADER] = cluster


def _register_hooks(sts_client: Any) -> None:
    # unique_id makes registration idempotent, so reusing a client does not stack handlers.
    events = sts_client.meta.events
    events.register(_HOOK_PARAMS, _move_param_to_context, unique_id="eks-rolling-k8s-aws-id-params")
    events.register(_HOOK_SIGN, _add_header_before_signing, unique_id="eks-rolling-k8s-aws-id-header")


def presigned_caller_identity_url(
    sts_client: Any, cluster_name: str, *, expires_s: int = TOKEN_EXPIRES_S
) -> str:
    """The presigned GET URL inside the token (useful to verify a token end to end)."""
    _register_hooks(sts_client)
    with aws_errors():
        url: str = sts_client.generate_presigned_url(
            "get_caller_identity",
            Params={K8S_AWS_ID_HEADER: cluster_name},
            ExpiresIn=expires_s,
            HttpMethod="GET",
        )
    return url


def get_token(sts_client: Any, cluster_name: str, *, expires_s: int = TOKEN_EXPIRES_S) -> str:
    """An EKS bearer token for `cluster_name`, signed with the STS client's credentials."""
    url = presigned_caller_identity_url(sts_client, cluster_name, expires_s=expires_s)
    encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + encoded


_ca_lock = threading.Lock()
_ca_files: dict[str, str] = {}


def write_ca_file(ca_data: str) -> str:
    """Decode DescribeCluster's base64 CA bundle into a PEM file; return its path."""
    return write_pem_file(base64.b64decode(ca_data))


def write_pem_file(pem: bytes) -> str:
    """Write a CA bundle once per content; return its path. The name is derived from the
    content, so warm Lambda invocations reuse the same file and two bundles never share one."""
    digest = hashlib.sha256(pem).hexdigest()[:16]
    with _ca_lock:
        path = _ca_files.get(digest)
        if path is not None and os.path.exists(path):
            return path
        path = os.path.join(tempfile.gettempdir(), f"eks-rolling-ca-{digest}.pem")
        fd, tmp = tempfile.mkstemp(prefix="eks-rolling-ca-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            os.replace(tmp, path)  # atomic: a concurrent reader never sees half a bundle
        except BaseException:
            os.unlink(tmp)
            raise
        _ca_files[digest] = path
        log.debug("wrote cluster CA bundle (%d bytes)", len(pem))
        return path


def kube_connection(
    settings: Settings, cluster_name: str, *, eks_client: Any, sts_client: Any
) -> KubeConnection:
    """Endpoint, CA and a fresh token for `cluster_name`.

    `settings.kube_api_url` (the sandbox) replaces DescribeCluster's endpoint and CA; the token is
    still real, so the same code path is exercised everywhere.
    """
    if settings.kube_api_url:
        url, ca_file = settings.kube_api_url, settings.kube_ca_file
    else:
        endpoint = describe_cluster(eks_client, cluster_name)
        url = endpoint.url
        ca_file = write_ca_file(endpoint.ca_data) if endpoint.ca_data else None
    token = get_token(sts_client, cluster_name)
    log.info("kube connection ready for cluster %s (override=%s)", cluster_name, bool(settings.kube_api_url))
    return KubeConnection(url=url, token=token, ca_file=ca_file)
