"""`SandboxEnv`: moto (AWS over HTTP), the Kubernetes sandbox and the cloud bridge, wired together,
plus the `EKS_ROLLING_*` settings that point eks-rolling at them.

Upstream: an AWS account and region with an EKS cluster in it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eks_rolling.aws.lock import create_lock_table

from .api.auth import ADMIN_TOKEN, eks_token_validator
from .api.tls import make_tls
from .cloud.bridge import CloudBridge
from .cloud.moto_server import MotoServer
from .controllers.base import Timings
from .redis.runtime import RedisRuntime
from .sandbox import Sandbox
from .timing import DEFAULT_TIME_FACTOR, TimingProfile, profile

log = logging.getLogger(__name__)

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_SESSION_TOKEN": "sandbox",
}


class SandboxEnv:
    def __init__(
        self,
        *,
        cluster_name: str = "sandbox",
        region: str = "us-east-1",
        timings: Timings | None = None,
        timing_profile: TimingProfile | str = "fast",
        time_factor: float = DEFAULT_TIME_FACTOR,
        redis: bool = False,
        data_dir: str | Path | None = None,
        authenticate: bool = True,
        watch_max_s: float = 30.0,
    ) -> None:
        self.cluster_name, self.region = cluster_name, region
        # ONE time factor: the profile's durations here, and the runner's Waits, back-offs and
        # step clock (runner.LocalRunner reads these two when it is not told otherwise).
        self.timing_profile = profile(timing_profile) if isinstance(timing_profile, str) else timing_profile
        self.time_factor = time_factor
        timings = timings or self.timing_profile.timings(time_factor)
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="eks-rolling-sandbox-"))
        self.moto = MotoServer(region=region)
        runtime = None
        if redis:
            runtime = RedisRuntime(self.data_dir / "redis")
        self.runtime = runtime
        # Like an EKS endpoint: HTTPS with the cluster's own CA, and EKS bearer tokens.
        self.tls = make_tls(self.data_dir / "pki") if authenticate else None
        self.sandbox = Sandbox(timings=timings, runtime=runtime, tls=self.tls, watch_max_s=watch_max_s)
        if runtime is not None:
            runtime.attach(self.sandbox.store)  # Redis pods read PVCs, Secrets and Endpoints
        if authenticate:
            # Requests need an EKS token for this cluster (or the static admin token).
            creds = (
                DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            )
            self.sandbox.server.token_validator = eks_token_validator(cluster_name, credentials=creds)
        self.cloud = CloudBridge(self.sandbox, cluster_name=cluster_name, region=region)
        self.lock_table = "eks-rolling-locks"
        self._started = False

    def start(self) -> SandboxEnv:
        self.moto.start()
        # moto keeps one world per process: a sandbox starts from an empty one (so only one
        # SandboxEnv runs in a process at a time).
        self.moto.reset()
        self.sandbox.start()
        self.cloud.start()
        self._started = True
        create_lock_table(self.aws("dynamodb"), self.lock_table)
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.cloud.stop()
        self.sandbox.stop()
        if self.runtime is not None:
            self.runtime.close()
        self.moto.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> SandboxEnv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def fast_forward(self, factor: float = DEFAULT_TIME_FACTOR) -> Iterator[None]:
        """The same profile at a small factor, for a scenario's set-up only (nothing measured
        runs inside): 1,000 nodes boot in seconds, not the profile's 2 minutes x the roll's
        factor (6 of the 7.4 set-up minutes of a 1,000-node bench at factor 3). Every
        controller and the cloud bridge read the one shared Timings at call time."""
        shared, fast = self.sandbox.timings, self.timing_profile.timings(factor)
        saved = dataclasses.replace(shared)
        for f in dataclasses.fields(shared):
            setattr(shared, f.name, getattr(fast, f.name))
        try:
            yield
        finally:
            for f in dataclasses.fields(shared):
                setattr(shared, f.name, getattr(saved, f.name))

    def kubeconfig(self, path: str | Path) -> Path:
        """A kubeconfig for kubectl with the static admin token (the tool uses real EKS tokens)."""
        return self.sandbox.kubeconfig(path, token=ADMIN_TOKEN)

    def aws(self, service: str) -> Any:
        return self.moto.client(service)

    def tool_env(self, **overrides: str) -> dict[str, str]:
        """Environment for eks-rolling (Lambda handlers, CLI) to act on this sandbox."""
        env = {
            "EKS_ROLLING_REGION": self.region,
            "EKS_ROLLING_AWS_ENDPOINT_URL": self.moto.endpoint_url,
            "EKS_ROLLING_KUBE_API_URL": self.sandbox.url,
            **({"EKS_ROLLING_KUBE_CA_FILE": str(self.tls.ca)} if self.tls else {}),
            "EKS_ROLLING_LOCK_TABLE": self.lock_table,
            "AWS_DEFAULT_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }
        env.update(
            {
                k if k.startswith(("EKS_ROLLING_", "AWS_", "POWERTOOLS_")) else f"EKS_ROLLING_{k.upper()}": v
                for k, v in overrides.items()
            }
        )
        return env

    @contextmanager
    def applied(self, **overrides: str) -> Iterator[dict[str, str]]:
        """Set `tool_env()` in os.environ for the duration (in-process handlers read it)."""
        env = self.tool_env(**overrides)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
