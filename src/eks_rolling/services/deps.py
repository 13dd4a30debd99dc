"""The adapters a step needs, built lazily from `Settings` (read when the step runs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from ..aws.alarms import Alarms
from ..aws.asg import AsgOps
from ..aws.clients import aws_client
from ..aws.eks_auth import kube_connection
from ..aws.executions import Executions
from ..aws.hooks import HookCaller
from ..aws.lock import AsgLock
from ..aws.notify import Notifier, notifier
from ..aws.plans import PlanStore
from ..k8s import KubeOps
from ..k8s.ops import api_client
from ..settings import Settings, load_settings


def utcnow() -> datetime:
    return datetime.now(UTC)


# The clock every step's deadlines are measured on, read when a step starts. Always the real
# clock on AWS; a sandbox that runs the state machine's Waits at a fraction of real time swaps in
# a clock running faster by the same factor (eks_rolling_sandbox.timing.StepClock, installed by
# the local runner), so a deadline in seconds keeps its real ratio to the Waits between polls.
step_clock: Callable[[], datetime] = utcnow
# A pause inside a step that stands for real time passing (an in-call retry's pace): time.sleep on
# AWS; the local runner scales it by the same factor as the Waits.
step_sleep: Callable[[float], None] = time.sleep


@dataclass
class Deps:
    settings: Settings
    now: Callable[[], datetime] = utcnow
    # Within one invocation: deadlines and pauses of a bounded in-call wait (cleanup, alignment).
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # Real epoch seconds, kept across invocations, for timing against real processes (a sentinel's
    # INFO cycle, a reset's convergence): never the step clock, which the sandbox may run faster.
    wall: Callable[[], float] = time.time
    _kube: dict[str, KubeOps] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Deps:
        return cls(load_settings(), now=step_clock)

    @cached_property
    def asg(self) -> AsgOps:
        return AsgOps(
            aws_client("autoscaling", self.settings),
            aws_client("ec2", self.settings),
            aws_client("ssm", self.settings),
        )

    @cached_property
    def alarms(self) -> Alarms:
        return Alarms(aws_client("cloudwatch", self.settings))

    @cached_property
    def notifier(self) -> Notifier:
        return notifier(self.settings)

    @cached_property
    def executions(self) -> Executions:
        return Executions(aws_client("stepfunctions", self.settings))

    @cached_property
    def plans(self) -> PlanStore:
        return PlanStore(aws_client("s3", self.settings), self.settings.plan_bucket)

    @cached_property
    def hooks(self) -> HookCaller:
        return HookCaller(self.settings)

    @cached_property
    def lock(self) -> AsgLock:
        return AsgLock(aws_client("dynamodb", self.settings), self.settings.lock_table)

    def kube(self, cluster_name: str) -> KubeOps:
        if cluster_name not in self._kube:
            self._kube[cluster_name] = KubeOps(_api_client(self.settings, cluster_name), self.settings)
        return self._kube[cluster_name]


# A warm Lambda reuses its Kubernetes connection (pool, CA, token) while the token is fresh. EKS
# accepts a token for 15 minutes after signing, whatever X-Amz-Expires says (aws-iam-authenticator),
# and a step may use the connection for its whole Lambda timeout after taking it from the cache:
# 5 minutes of reuse + a 5-minute step leaves 5 minutes for clock skew. KubeOps itself (and its
# per-invocation caches of owners and StatefulSets) is built anew for every invocation.
EKS_TOKEN_VALID_S = 900
TOKEN_REUSE_S = 300.0
_api_clients: dict[tuple[Any, ...], tuple[float, Any]] = {}
_api_lock = threading.Lock()


def _api_client(settings: Settings, cluster_name: str) -> Any:
    key = (
        cluster_name,
        settings.kube_api_url,
        settings.kube_ca_file,
        settings.region,
        settings.aws_endpoint_url,
    )
    now = time.monotonic()
    with _api_lock:
        hit = _api_clients.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    conn = kube_connection(
        settings, cluster_name, eks_client=aws_client("eks", settings), sts_client=aws_client("sts", settings)
    )
    client = api_client(conn, settings)
    with _api_lock:
        _api_clients[key] = (now + TOKEN_REUSE_S, client)
    return client
