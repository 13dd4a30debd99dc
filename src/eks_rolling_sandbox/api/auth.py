"""Bearer-token authentication for the sandbox API, as EKS does it (aws-iam-authenticator): a
token `k8s-aws-v1.<base64url(presigned STS GetCallerIdentity URL)>` is valid when the URL signs
the `x-k8s-aws-id` header for this cluster, is not stale, and STS (moto) answers it with 200.
A static admin token stands in for the cluster creator's access (kubectl, tests)."""

from __future__ import annotations

import base64
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

TOKEN_PREFIX = "k8s-aws-v1."
ADMIN_TOKEN = "sandbox-admin"
MAX_AGE_S = 15 * 60  # EKS accepts a token for 15 minutes after signing
CACHE_S = 120.0  # kube-apiserver's --authentication-token-webhook-cache-ttl default (2m)
# The STS round trip goes to moto in this process. On a machine busy simulating 1,000 nodes it can
# take seconds; a short timeout turned that into 401s, which no tool should retry. Longer than the
# clients' request timeout, a slow check looks like a slow apiserver (a timeout, retried) instead.
STS_TIMEOUT_S = 60.0


def decode_token(token: str) -> str | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    raw = token[len(TOKEN_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def token_problem(token: str, cluster_name: str, *, now: datetime | None = None) -> str | None:
    """Why `token` is not acceptable before asking STS, or None."""
    url = decode_token(token)
    if url is None:
        return "not an EKS token"
    q = parse_qs(urlsplit(url).query)
    if q.get("Action") != ["GetCallerIdentity"]:
        return "not a GetCallerIdentity request"
    if "x-k8s-aws-id" not in (q.get("X-Amz-SignedHeaders") or [""])[0].split(";"):
        return "x-k8s-aws-id is not signed"
    try:
        signed = datetime.strptime(q["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return "no signing date"
    age = ((now or datetime.now(UTC)) - signed).total_seconds()
    if age > MAX_AGE_S or age < -300:
        return f"token signed {int(age)}s ago"
    return None


def signature_matches(
    url: str, cluster_name: str, access_key: str, secret_key: str, session_token: str | None = None
) -> bool:
    """Recompute the presigned request's SigV4 signature with `x-k8s-aws-id: <cluster>` as STS
    would (moto does not check signatures): a token signed for another cluster fails here."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(url)
    q = parse_qs(parts.query, keep_blank_values=True)
    given = (q.get("X-Amz-Signature") or [""])[0]
    scope = (q.get("X-Amz-Credential") or [""])[0].split("/")
    if len(scope) != 5 or scope[0] != access_key:
        return False
    from urllib.parse import urlencode, urlunsplit

    unsigned = urlunsplit(
        parts._replace(query=urlencode([(k, v) for k, vs in q.items() if k != "X-Amz-Signature" for v in vs]))
    )
    request = AWSRequest(method="GET", url=unsigned, headers={"x-k8s-aws-id": cluster_name})
    request.context["timestamp"] = q["X-Amz-Date"][0]
    auth = SigV4QueryAuth(
        Credentials(access_key, secret_key, session_token),
        scope[3],
        scope[2],
        expires=int(q["X-Amz-Expires"][0]),
    )
    canonical = auth.canonical_request(request)
    expected: str = auth.signature(auth.string_to_sign(request, canonical), request)
    return expected == given


def eks_token_validator(
    cluster_name: str,
    *,
    credentials: tuple[str, str, str | None] | None = None,
    static_tokens: frozenset[str] = frozenset({ADMIN_TOKEN}),
) -> Callable[[str | None], bool]:
    cache: dict[str, float] = {}
    lock = threading.Lock()

    def validate(token: str | None) -> bool:
        if token is None:
            return False
        if token in static_tokens:
            return True
        with lock:
            if cache.get(token, 0.0) > time.monotonic():
                return True
        problem = token_problem(token, cluster_name)
        if problem is not None:
            log.info("rejected token: %s", problem)
            return False
        url = decode_token(token)
        assert url is not None
        if credentials is not None and not signature_matches(url, cluster_name, *credentials):
            log.info("rejected token: signature does not cover this cluster")
            return False
        req = urllib.request.Request(url, headers={"x-k8s-aws-id": cluster_name})
        try:
            with urllib.request.urlopen(req, timeout=STS_TIMEOUT_S) as resp:
                ok = resp.status == 200 and b"GetCallerIdentityResponse" in resp.read()
        except (urllib.error.URLError, OSError) as exc:
            log.warning("rejected token: STS said %s", exc)
            return False
        if ok:
            with lock:
                cache[token] = time.monotonic() + CACHE_S
        return ok

    return validate
