"""Run the real state machine locally: moto's Step Functions interpreter executes
statemachine/rolling_upgrade.asl.json, each Task's Lambda is dispatched in-process to the handler
named in that function's configuration, and Wait states and retry back-offs are time-scaled.

Four moto internals are patched here, and only here (reference/local-sfn-cdk.md §1.3, §1.5):
`LambdaSimpleBackend.invoke` (moto never runs Python handlers by itself), the interpreter's
Wait / retry sleeps, the name the interpreter gives a Lambda service error (moto says
`Exception`; Step Functions says `Lambda.<error code>`, which is what the ASL's Retry matches),
and the interpreter's Lambda client (one shared, not one built per task).

`LambdaFaults` makes Lambda itself refuse invokes before any handler runs, as an Inactive VPC
function does on AWS (502 `ResourceNotReadyException` while its network interfaces come back),
or lose an invoke after its handler ran (its side effects done, its result never returned: a
killed runtime), which Step Functions sees as a Lambda service error and retries.

Upstream: AWS Step Functions running the ASL with Lambda Task states.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote

from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError

from eks_rolling import metrics
from eks_rolling.steps import LAMBDA_TIMEOUT_S, STEPS
from eks_rolling.timeline import Timeline, build_timeline
from eks_rolling.triggers import TRIGGER_PATTERNS, event_pattern

from .cloud.eventbridge import EventBus
from .cloud.moto_server import MotoServer
from .cloud.sfn_children import child_executions
from .env import SandboxEnv
from .timing import StepClock

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "rolling_upgrade.asl.json"
WAVE_ASL_PATH = ROOT / "statemachine" / "roll_wave.asl.json"
FUNCTION_PREFIX = "eks-rolling-"
STATE_MACHINE = "eks-rolling"
WAVE_STATE_MACHINE = "eks-rolling-wave"
WAVE_PLACEHOLDER = "RollWaveStateMachineArn"  # the parent starts each wave on this machine
# Where moto's interpreter builds the client of each Lambda task it runs.
_LAMBDA_EVAL = "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils"
PLAN_BUCKET = "eks-rolling-plans"  # as the CDK app's bucket: large plans keep their waves here


class FakeContext:
    """The parts of the Lambda context Powertools reads."""

    def __init__(self, fn_name: str, arn: str, timeout_s: int = LAMBDA_TIMEOUT_S) -> None:
        self.function_name, self.invoked_function_arn = fn_name, arn
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 512
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{fn_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


@dataclass
class Invocation:
    function: str
    started: float
    duration_s: float
    error: str | None


@dataclass
class InjectedLambdaError:
    step: str
    code: str
    status: int
    after_handler: bool = False


@dataclass
class LambdaFaults:
    """Invokes that Lambda refuses before running the handler, queued per step id."""

    pending: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    injected: list[InjectedLambdaError] = field(default_factory=list)
    crashes: dict[str, int] = field(default_factory=dict)
    hangups: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(
        self, *steps: str, times: int = 1, code: str = "ResourceNotReadyException", status: int = 502
    ) -> None:
        """The next `times` invokes of each of `steps` (every step if none is named) fail with
        Lambda error `code` and HTTP `status`."""
        with self.lock:
            for step in steps or [s.id for s in STEPS]:
                self.pending.setdefault(step, []).extend([(code, status)] * times)

    def crash_after_handler(self, *steps: str, times: int = 1) -> None:
        """The next `times` invokes of each of `steps` run the handler to its end, then fail with
        a 500 `ServiceException` instead of returning its result."""
        self._add(self.crashes, steps, times)

    def take_crash(self, step: str) -> bool:
        return self._take(
            self.crashes, InjectedLambdaError(step, "ServiceException", 500, after_handler=True)
        )

    def hang_up(self, *steps: str, times: int = 1) -> None:
        """The next `times` invokes of each of `steps` fail on the way, alternately losing the
        connection before an answer and never making one (botocore's ConnectionClosedError and
        ConnectTimeoutError in the interpreter: a busy moto did both at 1,000 nodes)."""
        self._add(self.hangups, steps, times)

    def take_hang_up(self, step: str) -> str | None:
        code = "ConnectionClosed" if self.hangups.get(step, 0) % 2 == 0 else "ConnectTimeout"
        return code if self._take(self.hangups, InjectedLambdaError(step, code, 0)) else None

    def _add(self, counts: dict[str, int], steps: tuple[str, ...], times: int) -> None:
        with self.lock:
            for step in steps:
                counts[step] = counts.get(step, 0) + times

    def _take(self, counts: dict[str, int], error: InjectedLambdaError) -> bool:
        with self.lock:
            if not counts.get(error.step):
                return False
            counts[error.step] -= 1
            self.injected.append(error)
            return True

    def take(self, step: str) -> tuple[str, int] | None:
        with self.lock:
            queue = self.pending.get(step)
            if not queue:
                return None
            code, status = queue.pop(0)
            self.injected.append(InjectedLambdaError(step, code, status))
            return code, status


def function_name(step: str, suffix: str) -> str:
    return f"{FUNCTION_PREFIX}{step.replace('_', '-')}-{suffix}"


def step_of_function(name: str) -> str:
    """`eks-rolling-drain-node-1a2b3c` -> `drain_node` (function_name's inverse)."""
    return name.removeprefix(FUNCTION_PREFIX).rpartition("-")[0].replace("-", "_")


@dataclass
class RunnerStats:
    invocations: list[Invocation] = field(default_factory=list)
    waits: list[tuple[float, float]] = field(default_factory=list)  # (asked, slept)
    # the EMF documents the steps wrote (on AWS: their stdout, read by CloudWatch Logs)
    emf: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _load_handler(path: str) -> Callable[[dict[str, Any], Any], Any]:
    module, _, attr = path.rpartition(".")
    fn: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module), attr)
    return fn


@contextmanager
def inprocess_lambdas(
    stats: RunnerStats, faults: LambdaFaults | None = None, moto: MotoServer | None = None
) -> Iterator[None]:
    """With `moto`, the interpreter's Lambda tasks share its client instead of building one per
    task (6 % of the CPU of a 300-node roll, py-spy), with moto's read timeout (none to speak of:
    the Task's TimeoutSeconds decides)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        fn = self.get_function(function_name, qualifier)  # unknown functions still 404, as in moto
        refused = faults.take(step_of_function(fn.function_name)) if faults is not None else None
        if refused is not None:
            code, status = refused
            refusal = JsonRESTError(code, f"injected: {fn.function_name} is not ready (Lambda {code})")
            refusal.code = status
            raise refusal
        event = json.loads(body) if body else {}
        started = time.monotonic()
        error = None
        try:
            result = _load_handler(fn.handler)(event, FakeContext(fn.function_name, fn.function_arn))
        except Exception as exc:  # the Lambda error envelope: errorType is the ASL error name
            error = type(exc).__name__
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {
                "errorType": error,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exc().splitlines()[-6:],
            }
        with stats.lock:
            stats.invocations.append(Invocation(fn.function_name, started, time.monotonic() - started, error))
        if faults is not None and faults.take_crash(step_of_function(fn.function_name)):
            crash = JsonRESTError("ServiceException", f"injected: {fn.function_name} died before returning")
            crash.code = 500
            raise crash
        return json.dumps(result).encode()

    def collect(line: str) -> None:
        with stats.lock:
            stats.emf.append(json.loads(line))

    def hang_up(request: Any, **_: Any) -> None:
        if faults is None or not faults.hangups:
            return
        # .../functions/<the function's ARN, quoted>/invocations
        name = unquote(request.url).partition(":function:")[2].partition("/")[0].partition(":")[0]
        code = faults.take_hang_up(step_of_function(name))
        if code == "ConnectionClosed":
            raise ConnectionClosedError(endpoint_url=request.url)
        if code is not None:
            raise ConnectTimeoutError(endpoint_url=request.url)

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # state_credentials is never None (moto passes the execution's role) and moto's own
        # client ignores it: no Task of ours has Credentials.
        if moto is None:
            return boto_client_for(region, service, state_credentials)
        # As moto's own: one attempt (the ASL's Retry decides), its read timeout.
        client = moto.client(
            service, region=region, read_timeout_s=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS, retries=0
        )
        # One shared client: a second registration under the same id is a no-op.
        client.meta.events.register("before-send.lambda.Invoke", hang_up, unique_id="sandbox-hang-up")
        return client

    with (
        mock.patch.object(LambdaSimpleBackend, "invoke", invoke),
        mock.patch.object(metrics, "write", collect),
        mock.patch(f"{_LAMBDA_EVAL}.boto_client_for", client_for),
    ):
        yield


@contextmanager
def lambda_error_names() -> Iterator[None]:
    """A Lambda API error (botocore ClientError) reaches Retry/Catch as `Lambda.<code>`, as on AWS;
    so does a connection lost or never made on the way (moto's interpreter invokes over HTTP; on
    AWS Step Functions calls Lambda itself, and a call that fails on the way is
    Lambda.SdkClientException: at 1,000 concurrent invokes moto's server answered connects late)."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from moto.stepfunctions.parser.api import LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
        StateTaskLambda,
    )

    moto_from_error = StateTaskLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            name, cause = f"Lambda.{ex.response['Error']['Code']}", ex.response["Error"].get("Message", "")
        elif isinstance(ex, HTTPClientError | BotoConnectionError):
            name, cause = "Lambda.SdkClientException", str(ex)
        else:
            return moto_from_error(self, env, ex)
        details = LambdaFunctionFailedEventDetails(error=name, cause=cause)
        event_details: Any = {"lambdaFunctionFailedEventDetails": details}  # moto's EventDetails
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=moto_from_error(self, env, ex).event_type,
            event_details=event_details,
        )

    with mock.patch.object(StateTaskLambda, "_from_error", from_error):
        yield


@contextmanager
def scaled_time(
    scale: float, stats: RunnerStats, min_s: float = 0.05, *, step_clock: bool = False
) -> Iterator[None]:
    """Waits, retry back-offs and the handlers' in-call pauses (deps.step_sleep) sleep `scale` x
    their seconds; with `step_clock` the handlers' clock (Deps.now) runs 1/scale times faster too,
    so their deadlines keep the real ratio to the Waits (timing.StepClock). Without it (the fast
    profile) handlers see the real clock. Above 1 a Task's TimeoutSeconds stretch too: a handler's
    60 s in-call wait takes 60 x scale wall seconds and must still fit its Task's 330 (below 1
    they stay wall seconds: a handler's CPU time does not shrink with the factor)."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        slept = max(wait_seconds * scale, min_s) if wait_seconds > 0 else 0.0
        stats.waits.append((float(wait_seconds), slept))
        if slept:
            env.program_state_event.wait(slept)

    real_time, real_monotonic = time.time, time.monotonic

    class _ScaledTime:
        @staticmethod
        def sleep(s: float) -> None:
            time.sleep(max(s * scale, min_s))

        time = staticmethod(real_time)
        monotonic = staticmethod(real_monotonic)

    moto_timeout = TimeoutSeconds._eval_seconds
    stretch = max(scale, 1.0)

    def timeout_seconds(self: Any, env: Any) -> int:
        seconds: int = moto_timeout(self, env)
        return seconds if self.is_default_value() else math.ceil(seconds * stretch)

    from eks_rolling.services import deps

    clock = StepClock(scale) if step_clock else deps.step_clock
    with (
        mock.patch.object(WaitFunction, "_wait_interval", wait_interval),
        mock.patch.object(TimeoutSeconds, "_eval_seconds", timeout_seconds),
        mock.patch.object(retrier_decl, "time", _ScaledTime),
        mock.patch.object(deps, "step_clock", clock),
        mock.patch.object(deps, "step_sleep", _ScaledTime.sleep),
    ):
        yield


class LocalRunner:
    def __init__(
        self,
        env: SandboxEnv,
        *,
        asl_path: Path = ASL_PATH,
        time_scale: float | None = None,
        settings: dict[str, str] | None = None,
        trigger: bool = False,
    ) -> None:
        self.env = env
        self.trigger = trigger
        self.bus: EventBus | None = None
        self.rules: list[str] = []
        self.asl_path = asl_path
        # One factor for the sandbox's durations and the state machine's time: the env's.
        self.time_scale = env.time_factor if time_scale is None else time_scale
        self.scales_clock = env.timing_profile.scales_clock
        if self.scales_clock and self.time_scale != env.time_factor:
            raise ValueError(
                f"time_scale {self.time_scale} differs from the {env.timing_profile.name} profile's time factor {env.time_factor}: one factor scales both"
            )
        self.settings = {"plan_bucket": PLAN_BUCKET, **(settings or {})}
        self.stats = RunnerStats()
        self.lambda_faults = LambdaFaults()
        self.state_machine_arn: str | None = None
        self.wave_state_machine_arn: str | None = None
        self.wave_asl_path = WAVE_ASL_PATH
        self.function_arns: dict[str, str] = {}
        self._stack: ExitStack | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalRunner:
        self._stack = ExitStack()
        self._stack.enter_context(self.env.applied(**self.settings))
        self._stack.enter_context(inprocess_lambdas(self.stats, self.lambda_faults, self.env.moto))
        self._stack.enter_context(lambda_error_names())
        self._stack.enter_context(child_executions())
        self._stack.enter_context(scaled_time(self.time_scale, self.stats, step_clock=self.scales_clock))
        self.deploy()
        if self.trigger:
            self.deploy_trigger()
            self.bus = EventBus(self.env.moto, region=self.env.region).start()
            self._stack.callback(self.bus.stop)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()

    def deploy(self) -> str:
        """One Lambda per step (handler `lambdas.<step>.handler`) and the two state machines (the
        wave child, then the parent that starts it), with the ASL's `${<State>FunctionArn}` and
        `${RollWaveStateMachineArn}` placeholders substituted, as CDK does."""
        lam, sfn = self.env.aws("lambda"), self.env.aws("stepfunctions")
        role = self._role()
        s3 = self.env.aws("s3")
        if PLAN_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=PLAN_BUCKET)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("lambdas/__init__.py", "")
        suffix = uuid.uuid4().hex[:6]
        for step in STEPS:
            fn = lam.create_function(
                FunctionName=function_name(step.id, suffix),
                Runtime="python3.12",
                Role=role,
                Handler=step.handler,
                Code={"ZipFile": buf.getvalue()},
                Timeout=LAMBDA_TIMEOUT_S,
            )
            self.function_arns[step.placeholder] = fn["FunctionArn"]
        self.wave_state_machine_arn = sfn.create_state_machine(
            name=WAVE_STATE_MACHINE, roleArn=role, definition=self._substituted(self.wave_asl_path)
        )["stateMachineArn"]
        self.state_machine_arn = sfn.create_state_machine(
            name=STATE_MACHINE, roleArn=role, definition=self._substituted(self.asl_path)
        )["stateMachineArn"]
        return self.state_machine_arn

    def _substituted(self, path: Path) -> str:
        text = path.read_text()
        values = {**self.function_arns, WAVE_PLACEHOLDER: self.wave_state_machine_arn or ""}
        for key, arn in values.items():
            text = text.replace("${" + key + "}", arn)
        if "${" in text:
            raise ValueError(f"unresolved placeholder in {path.name}")
        return text

    def deploy_trigger(self) -> list[str]:
        """The CDK app's trigger rules (`infra/trigger.py`), from the same patterns, on the default
        bus of moto's EventBridge, each targeting the state machine; the `EventBus` delivers."""
        assert self.state_machine_arn, "deploy() first"
        events, role = self.env.aws("events"), self._role()
        for name in TRIGGER_PATTERNS:
            rule = f"{STATE_MACHINE}-{name}"
            events.put_rule(
                Name=rule,
                EventPattern=json.dumps(event_pattern(name)),
                State="ENABLED",
                Description=f"eks-rolling: start a roll on {TRIGGER_PATTERNS[name][1]['eventName'][0]}",
            )
            events.put_targets(
                Rule=rule, Targets=[{"Id": "StateMachine", "Arn": self.state_machine_arn, "RoleArn": role}]
            )
            self.rules.append(rule)
        return self.rules

    def _role(self) -> str:
        arn: str = self.env.aws("iam").create_role(
            RoleName=f"eks-rolling-{uuid.uuid4().hex[:8]}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        return arn

    # --- executions ----------------------------------------------------------------------------
    def start(self, payload: dict[str, Any], *, name: str | None = None) -> str:
        assert self.state_machine_arn
        sfn = self.env.aws("stepfunctions")
        arn: str = sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or f"run-{uuid.uuid4().hex[:12]}",
            input=json.dumps(payload),
        )["executionArn"]
        return arn

    def describe(self, arn: str) -> dict[str, Any]:
        out: dict[str, Any] = self.env.aws("stepfunctions").describe_execution(executionArn=arn)
        return out

    def wait(
        self,
        arn: str,
        *,
        timeout: float = 300.0,
        poll: float = 0.2,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                d = self.describe(arn)
            except (ReadTimeoutError, ConnectionClosedError) as exc:
                # The watcher's own poll, on a sandbox loaded by a big roll: the execution runs
                # on regardless, so a slow answer is no reason to stop watching it.
                if time.monotonic() > deadline:
                    raise
                log.warning("describe_execution %s: %s; polling on", arn, exc)
                continue
            if on_poll is not None:
                on_poll(d)
            if d["status"] != "RUNNING":
                return d
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still running after {timeout}s")
            time.sleep(poll)

    def run(
        self, payload: dict[str, Any], *, timeout: float = 300.0, name: str | None = None
    ) -> dict[str, Any]:
        return self.wait(self.start(payload, name=name), timeout=timeout)

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The ROLL's history: the execution's own events, then each of its waves' (child
        executions, in start order), as an auditor reads them by following the links."""
        events = self.own_history(arn)
        for child in self.children(arn):
            events.extend(self.own_history(child))
        return events

    def children(self, arn: str) -> list[str]:
        """The wave executions this execution started (their input names it as the parent)."""
        if not self.wave_state_machine_arn:
            return []
        sfn = self.env.aws("stepfunctions")
        found: list[tuple[Any, str]] = []
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.wave_state_machine_arn
        ):
            for ex in page["executions"]:
                d = sfn.describe_execution(executionArn=ex["executionArn"])
                if (
                    json.loads(d.get("input") or "{}").get("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID")
                    == arn
                ):
                    found.append((d["startDate"], ex["executionArn"]))
        return [a for _, a in sorted(found)]

    def timeline(self, arn: str) -> Timeline:
        """The roll's progress and per-node steps (eks_rolling.timeline), from the parent's and
        each wave's own history, as `eks-rolling status` and `report` read them on AWS."""
        parent = self.own_history(arn)
        waves = [
            (c.rsplit(":", 1)[-1], str(self.describe(c)["status"]), self.own_history(c))
            for c in self.children(arn)
        ]
        return build_timeline(arn, str(self.describe(arn)["status"]), parent, waves)

    def own_history(self, arn: str) -> list[dict[str, Any]]:
        """One execution's events only."""
        sfn = self.env.aws("stepfunctions")
        events: list[dict[str, Any]] = []
        token = None
        while True:
            kw: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
            if token:
                kw["nextToken"] = token
            page = sfn.get_execution_history(**kw)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events
