"""Hook targets for the sandbox, run for real: Lambda functions in moto whose handler is `handler`
below (the runner's in-process Lambda dispatch runs it), and an HTTPS endpoint on loopback that
verifies each request's SigV4 signature by recomputing it with botocore, as API Gateway's IAM
authorization does. Both record every call and can be told to fail.

Upstream: a customer's pre-drain / post-replace hook, a Lambda function or an API Gateway route.
"""

from __future__ import annotations

import hmac
import io
import json
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from ..api.tls import TlsFiles

HANDLER = f"{__name__}.handler"
# SigV4's Authorization header (Signature Version 4 signing, "Authorization header").
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
MAX_SKEW_S = 300  # AWS refuses a signature more than 5 minutes off


@dataclass
class HookCall:
    target: str
    body: dict[str, Any]
    verified: bool = True  # the HTTPS endpoint's SigV4 check (Lambda: IAM already checked it)
    at: float = 0.0


@dataclass
class HookRecorder:
    """What one hook target received, and how it answers: `fail` makes every call fail (a
    Lambda raises, the endpoint answers `fail_status`), `fail_times` only the first few."""

    target: str = ""
    calls: list[HookCall] = field(default_factory=list)
    fail: bool = False
    fail_times: int = 0
    fail_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: HookCall) -> bool:
        """Record the call; True when this call must fail."""
        with self.lock:
            self.calls.append(call)
            if self.fail_times > 0:
                self.fail_times -= 1
                return True
            return self.fail

    def bodies(self, phase: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [c.body for c in self.calls if phase is None or c.body.get("phase") == phase]


# Lambda hooks: function name -> recorder (the handler runs in this process).
_FUNCTIONS: dict[str, HookRecorder] = {}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    recorder = _FUNCTIONS[context.function_name]
    if recorder.record(HookCall(context.invoked_function_arn, dict(event), at=time.time())):
        raise RuntimeError(f"injected: hook {context.function_name} refuses node {event.get('node')}")
    return {"ok": True, "node": event.get("node")}


def create_hook_function(lam: Any, iam: Any, name: str) -> tuple[str, HookRecorder]:
    """A Lambda function in moto whose handler records the calls: (its ARN, its recorder)."""
    role = iam.create_role(
        RoleName=f"hook-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hook.py", "")  # never read: the runner imports HANDLER in-process
    arn: str = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler=HANDLER, Code={"ZipFile": buf.getvalue()}
    )["FunctionArn"]
    recorder = HookRecorder(target=arn)
    _FUNCTIONS[name] = recorder
    return arn, recorder


def signature_problem(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: ReadOnlyCredentials,
    *,
    region: str,
    service: str,
    now: datetime | None = None,
) -> str | None:
    """None when the request carries a valid SigV4 signature by `credentials` for `region` and
    `service`, else why not. The signature is recomputed from the request as received (method,
    URL, the signed headers, the body's hash), so a changed byte fails it. `headers`: lower-case
    names."""
    m = _AUTH.fullmatch(headers.get("authorization", "").strip())
    if m is None:
        return "no SigV4 Authorization header"
    if m["key"] != credentials.access_key:
        return f"unknown access key {m['key']}"
    if (m["region"], m["service"]) != (region, service):
        return f"signed for {m['region']}/{m['service']}, expected {region}/{service}"
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return f"bad X-Amz-Date {amz_date!r}"
    if abs(((now or datetime.now(UTC)) - signed_at).total_seconds()) > MAX_SKEW_S:
        return f"signed at {amz_date}: too far from now"
    signed = m["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return f"SignedHeaders {m['signed']} leave out host or x-amz-date"
    missing = [h for h in signed if headers.get(h) is None]
    if missing:
        return f"signed headers {missing} are not in the request"
    request = AWSRequest(
        method=method, url=url, data=body, headers={h: headers[h] for h in signed if h != "host"}
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(credentials, service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if hmac.compare_digest(expected, m["signature"]) else "signature does not match"


class HttpsHookServer:
    """POST endpoint on https://127.0.0.1:<port>/<path> with the sandbox's CA; answers 200 to a
    correctly signed request (403 otherwise, like API Gateway), or `fail_status` when told to."""

    def __init__(
        self, tls: TlsFiles, credentials: ReadOnlyCredentials, *, region: str, service: str = "execute-api"
    ) -> None:
        self.tls, self.credentials, self.region, self.service = tls, credentials, region, service
        self.recorder = HookRecorder()
        self.refused: list[str] = []  # why requests failed the signature check
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"https://127.0.0.1:{self._server.server_address[1]}/hooks/node"

    def start(self) -> HttpsHookServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = f"https://{self.headers.get('Host', '')}{self.path}"
                problem = signature_problem(
                    "POST",
                    url,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    hook.credentials,
                    region=hook.region,
                    service=hook.service,
                )
                try:
                    data = json.loads(body)
                except ValueError:
                    data = {"raw": body.decode(errors="replace")}
                fails = hook.recorder.record(HookCall(url, data, verified=problem is None, at=time.time()))
                if problem is not None:
                    hook.refused.append(problem)
                    self._answer(403, {"message": problem})
                elif fails:
                    self._answer(hook.recorder.fail_status, {"message": "injected failure"})
                else:
                    self._answer(200, {"ok": True})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = self.tls.server_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="https-hook", daemon=True)
        self._thread.start()
        self.recorder.target = self.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HttpsHookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
