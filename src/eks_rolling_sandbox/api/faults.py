"""Fault injection and the request log, for tests that must see the tool cope with a hostile API.

No upstream counterpart: a test harness, the equivalent of a misbehaving apiserver or proxy.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """Match requests by method and path regex; then answer with `status` (and `body`/`headers`),
    sleep `delay_s` before handling normally, or drop the connection. `times` bounds how often it
    fires (None = always); `after` skips the first N matching requests."""

    method: str | None = None
    path: str = ".*"
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False
    times: int | None = None
    after: int = 0
    query: str | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if not re.search(self.path, path):
            return False
        return not (self.query and not re.search(self.query, query))


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault | None = None, **kw: Any) -> Fault:
        f = fault or Fault(**kw)
        with self._lock:
            self._faults.append(f)
        return f

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(self, method: str, path: str, query: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if not f.matches(method, path, query):
                    continue
                f.seen += 1
                if f.seen <= f.after:
                    continue
                if f.times is not None and f.fired >= f.times:
                    continue
                f.fired += 1
                return f
        return None


@dataclass(frozen=True)
class LoggedRequest:
    at: float
    method: str
    path: str
    query: str
    content_type: str | None
    body: Any
    status: int
    user_agent: str
    response_type: str = "application/json"  # protobuf when the client asked for it first

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


class RequestLog:
    def __init__(self, limit: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._limit = limit

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._limit:
                del self._entries[: self._limit // 10]

    def entries(self, since: float = 0.0) -> list[LoggedRequest]:
        with self._lock:
            return [e for e in self._entries if e.at >= since]

    def writes(self, since: float = 0.0) -> list[LoggedRequest]:
        return [e for e in self.entries(since) if e.is_write]

    def mark(self) -> float:
        """A timestamp to pass as `since` later."""
        return time.time()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
