"""moto in server mode on 127.0.0.1, the local stand-in for every AWS API the tool calls.

Server mode (real HTTP) rather than `mock_aws` so that the code under test builds its clients
exactly as in Lambda (`endpoint_url` is the only difference) and so that moto's Step Functions
interpreter, which calls Lambda over HTTP at `localhost:$MOTO_PORT`, reaches the same backends.

Upstream: moto's server mode (moto/server.py, ThreadedMotoServer).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from .aws_faults import AwsFaults, FaultInjector

log = logging.getLogger(__name__)

DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"  # moto accepts any credentials
DEFAULT_REGION = "us-east-1"
# Connections one shared client may keep open (opened on demand): the Lambda invokes moto's
# interpreter has in flight at once (1,000 with 20 waves of 50 together), a test's threads, a
# bench's pollers. Beyond it each call opens and drops a connection of its own.
CLIENT_POOL = 2048
# werkzeug listens with a backlog of 128; at 1,000 concurrent invokes the queue filled while the
# busy process accepted slowly, and connects timed out (the kernel's somaxconn is 4,096).
LISTEN_BACKLOG = 4096

# Loggers that print a line per HTTP request or per failed state (failures are in the
# execution history anyway).
_QUIET_LOGGERS = ("werkzeug", "moto.stepfunctions.parser", "moto.awslambda", "moto.awslambda_simple")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuerySignedRouting:
    """Route query-signed (presigned) requests by their credential scope.

    moto's dispatcher picks a backend from the Host header's AWS domain or the Authorization
    header. On 127.0.0.1 a presigned URL has neither, so e.g. the STS GetCallerIdentity URL
    behind an EKS token lands in S3 (ListBuckets, HTTP 200). Copying the query's SigV4 fields
    into an Authorization header lets moto route it to the service the URL was signed for.
    S3 handles presigned URLs itself and is left alone.
    """

    def __init__(self, app: WsgiApp) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "HTTP_AUTHORIZATION" not in environ:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            credential = query.get("X-Amz-Credential", [""])[0]
            scope = credential.split("/")
            if len(scope) == 5 and scope[3] != "s3":
                signed = query.get("X-Amz-SignedHeaders", ["host"])[0]
                signature = query.get("X-Amz-Signature", [""])[0]
                environ["HTTP_AUTHORIZATION"] = (
                    f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}"
                )
        return self._app(environ, start_response)


# Action-name prefixes that only read (or, for Invoke, run our own Lambda code, whose own AWS
# calls are recorded separately), and REST reads by method. Anything else changes the account.
_READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet", "Invoke", "Lookup", "GET ", "HEAD ")


@dataclass(frozen=True)
class AwsCall:
    """One request moto served: the signing service, the API action, the caller's User-Agent."""

    at: float
    service: str
    action: str
    user_agent: str

    @property
    def is_write(self) -> bool:
        return not self.action.startswith(_READ_PREFIXES)


class AwsCallLog:
    """Every AWS API call served, as the sandbox's `RequestLog` is for the Kubernetes API: tests
    assert from it which writes a run made (moto keeps no such record in server mode)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._calls: list[AwsCall] = []
        self._limit = limit

    def record(self, call: AwsCall) -> None:
        with self._lock:
            self._calls.append(call)
            if len(self._calls) > self._limit:
                del self._calls[: self._limit // 10]

    def calls(self, since: float = 0.0) -> list[AwsCall]:
        with self._lock:
            return [c for c in self._calls if c.at >= since]

    def writes(self, since: float = 0.0) -> list[AwsCall]:
        return [c for c in self.calls(since) if c.is_write]


def _form(environ: dict[str, Any]) -> dict[str, list[str]]:
    """The query-protocol parameters of a form-encoded request body (EC2, Auto Scaling, STS...)."""
    if not str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        return {}
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)  # put it back for moto
    form: dict[str, list[str]] = parse_qs(body.decode("utf-8", "replace"))
    return form


def _action(environ: dict[str, Any]) -> str:
    """The API action across AWS's wire protocols: JSON (X-Amz-Target), query (Action=, in the
    query string or a form body) and REST (method and path; Lambda's Invoke by its path)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    query: dict[str, list[str]] = parse_qs(str(environ.get("QUERY_STRING", "")))
    if query.get("Action"):
        return query["Action"][0]
    form = _form(environ)
    if form.get("Action"):
        return form["Action"][0]
    method, path = str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", ""))
    if method == "POST" and path.endswith("/invocations"):
        return "Invoke"
    return f"{method} {path}"


def _service(environ: dict[str, Any]) -> str:
    # SigV4: "Credential=<key>/<date>/<region>/<service>/aws4_request"
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    scope = auth.partition("Credential=")[2].split(",")[0].split("/")
    return scope[3] if len(scope) == 5 else ""


@dataclass(frozen=True)
class ServedCall:
    """A query-protocol call as served, for an observer (the sandbox's CloudTrail): the call, its
    parameters, the HTTP status and the response body moto sent."""

    call: AwsCall
    params: dict[str, str]
    access_key: str
    region: str
    status: int
    response: bytes


CallObserver = Callable[[ServedCall], None]


class _CallRecorder:
    def __init__(self, app: WsgiApp, log: AwsCallLog, observers: list[CallObserver]) -> None:
        self._app, self._log, self._observers = app, log, observers

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            return self._app(environ, start_response)
        call = AwsCall(time.time(), _service(environ), _action(environ), environ.get("HTTP_USER_AGENT", ""))
        self._log.record(call)
        form = _form(environ)
        if not self._observers or not form:
            return self._app(environ, start_response)
        status: list[int] = []

        def capture(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(code.split()[0]))
            return start_response(code, headers, exc_info)

        body = b"".join(self._app(environ, capture))
        # SigV4: "Credential=<key>/<date>/<region>/<service>/aws4_request"
        scope = (
            str(environ.get("HTTP_AUTHORIZATION", "")).partition("Credential=")[2].split(",")[0].split("/")
        )
        served = ServedCall(
            call=call,
            params={k: v[0] for k, v in form.items()},
            access_key=scope[0],
            region=scope[2] if len(scope) == 5 else "",
            status=status[0] if status else 500,
            response=body,
        )
        for observe in list(self._observers):
            observe(served)  # observers only queue: this runs in the request's thread
        return [body]


# Services whose calls moto serves as read-modify-writes of shared lists (an ASG's instance_states
# and desired capacity; EC2's reservations). AWS applies each call atomically; moto's threaded
# server does not: in a 300-node roll with waves together, six concurrent SetDesiredCapacity calls
# to one floor each launched their own delta (642 instances for a desired 600), and the next
# capacity change removed the surplus from the head of the list: old nodes, with their pods.
ATOMIC_SERVICES = frozenset({"autoscaling", "ec2"})


class _AtomicCalls:
    """One call at a time for ATOMIC_SERVICES, the response body read inside the lock."""

    def __init__(self, app: WsgiApp, services: frozenset[str] = ATOMIC_SERVICES) -> None:
        self._app, self._services = app, services
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _service(environ) not in self._services:
            return self._app(environ, start_response)
        with self._lock:
            return [b"".join(self._app(environ, start_response))]


def _remember_backends(dispatcher: Any) -> None:
    """moto's dispatcher picks every request's backend under ONE lock (DomainDispatcherApplication
    .get_application), and the pick lists moto's package directory (a stat per service, ~200) and
    then tries its URL patterns one by one. Under a loaded GIL each of those syscalls waits its
    turn: in a 300-node roll a py-spy dump showed 91 requests queued on that lock, and the waves'
    terminations timed out for minutes. The answer depends on the host alone: remember it."""
    lookup = dispatcher.get_backend_for_host
    memo: dict[str | None, Any] = {}

    @functools.wraps(lookup)  # __wrapped__: moto's own, for the test's control
    def get_backend_for_host(host: str | None) -> Any:
        if host not in memo:  # under the dispatcher's lock
            memo[host] = lookup(host)
        return memo[host]

    dispatcher.get_backend_for_host = get_backend_for_host


class MotoServer:
    """One moto server thread on an ephemeral port; start/stop as often as needed.

    moto's backends are process-wide: two servers in one process serve the same resources, and
    `reset()` on either wipes both.
    """

    # Process-wide settings moto reads from globals; restored when the last server stops.
    _global_lock = threading.Lock()
    _ports: list[int] = []
    _saved_env: str | None = None
    _saved_config: dict[str, Any] = {}

    def __init__(
        self, *, region: str = DEFAULT_REGION, quiet: bool = True, atomic: frozenset[str] = ATOMIC_SERVICES
    ) -> None:
        self.region = region
        self._atomic = atomic  # tests' control: frozenset() serves every call as moto does
        self._quiet = quiet
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        # One session keeps botocore's parsed service models; sessions are not thread-safe.
        self._session: Any = None
        self._session_lock = threading.Lock()
        self._clients: dict[tuple[str, str, int, float | None, int], Any] = {}
        self.calls = AwsCallLog()
        self.faults = AwsFaults()
        self._observers: list[CallObserver] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> MotoServer:
        if self._server is not None:
            return self
        if self._quiet:
            for name in _QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.socket.listen(LISTEN_BACKLOG)  # a listening socket takes a new backlog
        self._wrap_app(server, self.calls, self._observers, self.faults, self._atomic)
        self._server = server
        self._port = server.get_host_and_port()[1]
        self._apply_globals(self._port)
        log.info("moto server listening on port %d", self._port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() shuts the loop down but keeps the socket open.
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()
        port, self._port = self._port, None
        if port is not None:
            self._restore_globals(port)
        log.info("moto server on port %s stopped", port)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MotoServer is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- helpers -----------------------------------------------------------------------------
    def client(
        self,
        service: str,
        *,
        region: str | None = None,
        read_timeout_s: float | None = None,
        retries: int = 1,
    ) -> Any:
        """A boto3 client bound to this server, with dummy credentials and `retries` retries
        (botocore's max_attempts counts retries: 1 is two attempts): one per service, region,
        port, read timeout and retries, shared (boto3 clients are thread-safe; building one costs
        tens of ms of CPU, and the runner's wait built one per 0.2 s poll)."""
        key = (service, region or self.region, self.port, read_timeout_s, retries)
        with self._session_lock:
            if key not in self._clients:
                if self._session is None:
                    self._session = boto3.session.Session()
                timeout = {} if read_timeout_s is None else {"read_timeout": read_timeout_s}
                self._clients[key] = self._session.client(
                    service,
                    region_name=key[1],
                    endpoint_url=self.endpoint_url,
                    aws_access_key_id=DUMMY_ACCESS_KEY,
                    aws_secret_access_key=DUMMY_SECRET_KEY,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": retries},
                        max_pool_connections=CLIENT_POOL,
                        **timeout,
                    ),
                )
            return self._clients[key]

    def observe(self, observer: CallObserver) -> Callable[[], None]:
        """Call `observer` after each query-protocol call is served; returns the way to stop."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def reset(self) -> None:
        """Forget every resource in every backend (moto's /moto-api/reset), and every fault."""
        self.faults.clear()
        self._moto_api("/moto-api/reset")

    def set_config(self, config: dict[str, Any]) -> None:
        """POST to /moto-api/config (same effect as `mock_aws(config=...)`)."""
        self._moto_api("/moto-api/config", config)

    def _moto_api(self, path: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.endpoint_url + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"moto {path} answered HTTP {resp.status}")

    @staticmethod
    def _wrap_app(
        server: ThreadedMotoServer,
        calls: AwsCallLog,
        observers: list[CallObserver],
        faults: AwsFaults,
        atomic: frozenset[str],
    ) -> None:
        # No client knows the port before start() returns, so swapping the app is race-free.
        # A call answered by an injected fault is still logged, as AWS would have seen it.
        inner = getattr(server, "_server", None)
        if inner is not None:
            _remember_backends(inner.app)
            injector = FaultInjector(_AtomicCalls(inner.app, atomic), faults, _action, _service)
            inner.app = _QuerySignedRouting(_CallRecorder(injector, calls, observers))

    @classmethod
    def _apply_globals(cls, port: int) -> None:
        with cls._global_lock:
            if not cls._ports:
                cls._saved_env = os.environ.get("MOTO_PORT")
                cls._saved_config = {k: default_user_config.get(k) for k in ("stepfunctions", "lambda")}
            cls._ports.append(port)
            # The newest server wins: moto's interpreter calls Lambda at localhost:$MOTO_PORT.
            os.environ["MOTO_PORT"] = str(port)
            default_user_config["stepfunctions"] = {"execute_state_machine": True}
            default_user_config["lambda"] = {"use_docker": False}

    @classmethod
    def _restore_globals(cls, port: int) -> None:
        with cls._global_lock:
            if port in cls._ports:
                cls._ports.remove(port)
            if cls._ports:
                os.environ["MOTO_PORT"] = str(cls._ports[-1])
                return
            if cls._saved_env is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = cls._saved_env
            for key, value in cls._saved_config.items():
                if value is not None:
                    default_user_config[key] = value  # type: ignore[literal-required]
