"""AWS answering with errors, for the fault matrix: throttling, `ScalingActivityInProgress` and
the like on chosen API actions (a WSGI layer in front of moto), and an Availability Zone out of
capacity for ASG launches (read by the patched launch method in `bridge.py`).

No upstream counterpart: a test harness, the equivalent of a busy or short-of-capacity account.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# AWS's JSON-protocol services among those the tool calls; the rest answer in the query XML.
_JSON_SERVICES = frozenset({"dynamodb", "states", "lambda", "logs", "ssm", "sts"})
# moto's backends, and so its ASG launches, are process-wide: so is the set of AZs out of capacity.
UNAVAILABLE_AZS: set[str] = set()


@dataclass
class AwsFault:
    """Answer `times` calls of `action` (e.g. "SetDesiredCapacity") with error `code`, after
    letting the first `after` through."""

    action: str
    code: str
    status: int = 400
    message: str = "injected by the sandbox"
    times: int = 1
    after: int = 0
    seen: int = 0
    fired: int = 0


@dataclass
class AwsFaults:
    """The faults moto's server answers with; `unavailable_azs` have no capacity for launches."""

    faults: list[AwsFault] = field(default_factory=list)
    unavailable_azs: set[str] = field(default_factory=lambda: UNAVAILABLE_AZS)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, action: str, code: str, **kw: Any) -> AwsFault:
        fault = AwsFault(action, code, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.unavailable_azs.clear()

    def pick(self, action: str) -> AwsFault | None:
        with self.lock:
            for f in self.faults:
                if f.action != action:
                    continue
                f.seen += 1
                if f.seen > f.after and f.fired < f.times:
                    f.fired += 1
                    return f
        return None


def error_response(service: str, fault: AwsFault) -> tuple[str, list[tuple[str, str]], bytes]:
    """The HTTP status line, headers and body AWS sends for `fault` in `service`'s protocol."""
    request_id = str(uuid.uuid4())
    status = f"{fault.status} Injected"
    if service in _JSON_SERVICES:
        body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", fault.code)]
    elif service == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code>"
            f"<Message>{fault.message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    headers.append(("x-amzn-RequestId", request_id))
    return status, headers, body


class FaultInjector:
    """WSGI layer: a call matching a fault gets its error; every other call reaches moto."""

    def __init__(
        self,
        app: WsgiApp,
        faults: AwsFaults,
        action_of: Callable[[dict[str, Any]], str],
        service_of: Callable[[dict[str, Any]], str],
    ) -> None:
        self._app, self._faults = app, faults
        self._action_of, self._service_of = action_of, service_of

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._faults.faults and not str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            fault = self._faults.pick(self._action_of(environ))
            if fault is not None:
                status, headers, body = error_response(self._service_of(environ), fault)
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
        return self._app(environ, start_response)
