"""The default event bus of the sandbox's account: CloudTrail records of the calls moto serves go
to it, and each is matched against the rules deployed in moto's EventBridge (`put_rule` with an
EventPattern, `put_targets`) by moto's own pattern matcher; a match starts an execution of each
Step Functions target with the whole event as input, as an `SfnStateMachine` target without an
input transform does. moto stores rules but delivers to no Step Functions target, hence this.

Delivery is asynchronous (a worker thread), as on AWS, where it takes seconds to minutes.

Upstream: Amazon EventBridge rules on the default bus with Step Functions targets.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.events.models import EventPattern

from .cloudtrail import cloudtrail_event, records
from .moto_server import MotoServer, ServedCall

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    rule: str
    target: str
    execution_arn: str | None  # None: StartExecution was refused (on AWS: the dead-letter queue)
    error: str | None = None


@dataclass
class BusRecord:
    """One event on the bus and what it started."""

    event: dict[str, Any]
    matched: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


class EventBus:
    """CloudTrail -> default bus -> rules -> Step Functions, over the sandbox's moto server."""

    def __init__(self, moto: MotoServer, *, region: str, limit: int = 10_000) -> None:
        self._moto, self._region, self._limit = moto, region, limit
        self._queue: queue.Queue[ServedCall | None] = queue.Queue()
        self._lock = threading.Lock()
        self._records: list[BusRecord] = []
        self._thread: threading.Thread | None = None
        self._unobserve: Any = None

    def start(self) -> EventBus:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="eventbridge", daemon=True)
            self._thread.start()
            self._unobserve = self._moto.observe(self._on_call)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._unobserve()
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._thread = None

    def records(self) -> list[BusRecord]:
        with self._lock:
            return list(self._records)

    def _on_call(self, served: ServedCall) -> None:
        if records(served):
            self._queue.put(served)

    def _run(self) -> None:
        while (served := self._queue.get()) is not None:
            try:
                self.put(cloudtrail_event(served, region=self._region))
            except Exception:  # one bad record must not stop the bus
                log.exception("could not deliver the CloudTrail record of %s", served.call.action)

    def put(self, event: dict[str, Any]) -> BusRecord:
        """Match `event` against every enabled rule of the default bus and deliver it."""
        record = BusRecord(event)
        events, sfn = self._moto.client("events"), self._moto.client("stepfunctions")
        rules = events.get_paginator("list_rules").paginate(EventBusName="default").build_full_result()
        for rule in rules.get("Rules", []):
            pattern = rule.get("EventPattern")
            if rule.get("State") != "ENABLED" or not pattern:
                continue
            if not EventPattern.load(pattern).matches_event(event):  # type: ignore[arg-type]
                continue
            record.matched.append(rule["Name"])
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                record.deliveries.append(self._deliver(sfn, rule["Name"], target, event))
        with self._lock:
            self._records.append(record)
            del self._records[: -self._limit]
        return record

    @staticmethod
    def _deliver(sfn: Any, rule: str, target: dict[str, Any], event: dict[str, Any]) -> Delivery:
        arn = str(target["Arn"])
        if ":states:" not in arn:
            return Delivery(rule, arn, None, "only Step Functions targets are delivered")
        try:
            out = sfn.start_execution(
                stateMachineArn=arn, name=uuid.uuid4().hex, input=target.get("Input") or json.dumps(event)
            )
        except Exception as exc:
            log.warning("rule %s could not start %s: %s", rule, arn, exc)
            return Delivery(rule, arn, None, str(exc))
        log.info("rule %s started %s", rule, out["executionArn"])
        return Delivery(rule, arn, str(out["executionArn"]))
