"""Helpers shared by the Sentinel integration and e2e tests: a field-report sandbox with only the
Redis Sentinel group (master, 2 replicas, 3 sentinels on real redis-server processes) and a
driver that plays the state machine's MoveRedisPods loop (a fresh `Deps` per round, as Lambda
gives; the Wait between rounds is shortened). Tests taint ("retire") only the nodes whose pods
they move."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE, REDIS_PORT, SENTINEL_PORT
from eks_rolling.models import MoveRedisPodsInput, MoveRedisPodsOutput, NodeTarget, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.redis import env_for, groups_of, move_redis_pods, redis_cleanup
from eks_rolling.services.redis.sentinel import SentinelProcedure
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.bridge import FIRST_NODE_INDEX_ENV, index_in_use
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.redis.runtime import read_secret
from eks_rolling_sandbox.scenarios import Scenario
from eks_rolling_sandbox.traffic.redis_sentinel import SentinelWriterProcess
from tests.factories.redis import requires_redis, run_context

NS, GROUP, MASTER_SET = "redis", "redis", "mymaster"
MASTER, REPLICAS = "redis-master-0", ("redis-replica-0", "redis-replica-1")
SENTINELS = ("redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2")
RUN = "it-redis-sentinel"

requires = [requires_redis]


@dataclass
class SentinelField:
    env: SandboxEnv
    scenario: Scenario
    settings: dict[str, str] = field(default_factory=dict)
    ctx: RollContext = field(default_factory=lambda: run_context(RUN))

    # --- the group as the tests see it -------------------------------------------------------
    @property
    def password(self) -> str:
        pw = read_secret(self.env.sandbox.store, NS, "redis-auth", "redis-password")
        assert pw
        return pw

    def pod(self, name: str) -> dict[str, Any]:
        pod = self.env.sandbox.store.get("pods", NS, name)
        assert pod is not None, name
        return pod

    def ip(self, name: str) -> str:
        return str(self.pod(name)["status"]["podIP"])

    def client(self, name: str, timeout: float = 2.0) -> redis.Redis:
        port = SENTINEL_PORT if name.startswith("redis-sentinel") else REDIS_PORT
        pw = None if port == SENTINEL_PORT else self.password
        return redis.Redis(self.ip(name), port, password=pw, socket_timeout=timeout, decode_responses=True)

    def role(self, name: str) -> str:
        with self.client(name) as r:
            return str(r.info("replication")["role"])

    def priority(self, name: str) -> int:
        with self.client(name) as r:
            return int(r.config_get("replica-priority")["replica-priority"])

    def sentinel_master(self, name: str) -> dict[str, Any]:
        with self.client(name) as s:
            return dict(s.execute_command("SENTINEL", "MASTER", MASTER_SET))

    def sentinel_replica_ips(self, name: str) -> set[str]:
        with self.client(name) as s:
            return {dict(r)["ip"] for r in s.execute_command("SENTINEL", "REPLICAS", MASTER_SET)}

    def describe(self) -> dict[str, Any]:
        """What each sentinel sees, for failure messages."""
        out: dict[str, Any] = {"master": self.ip(MASTER), "replicas": [self.ip(r) for r in REPLICAS]}
        for s in SENTINELS:
            try:
                state = self.sentinel_master(s)
                out[s] = (state["ip"], state["num-other-sentinels"], sorted(self.sentinel_replica_ips(s)))
            except (redis.RedisError, OSError) as exc:
                out[s] = repr(exc)
        return out

    def converged(self, master: str = MASTER) -> bool:
        """Every sentinel names `master`, lists exactly the live replicas and its 2 peers."""
        try:
            replicas = {self.ip(p) for p in (MASTER, *REPLICAS) if p != master}
            for s in SENTINELS:
                state = self.sentinel_master(s)
                if state["ip"] != self.ip(master) or int(state["num-other-sentinels"]) != 2:
                    return False
                if self.sentinel_replica_ips(s) != replicas:
                    return False
        except (redis.RedisError, OSError):
            return False
        return True

    def process(self, name: str) -> int:
        proc = self.env.runtime.process(self.pod(name)["metadata"]["uid"]) if self.env.runtime else None
        assert proc is not None and proc.pid is not None
        return proc.pid

    def freeze(self, name: str, frozen: bool = True) -> None:
        """SIGSTOP/SIGCONT a pod's process: it keeps its port but never answers."""
        os.kill(self.process(name), signal.SIGSTOP if frozen else signal.SIGCONT)

    def writer(self, **kw: Any) -> SentinelWriterProcess:
        """A client writing through Sentinel, in its own process (it measures Redis, not us)."""
        kw = {"interval_s": 0.005, "max_writes": 200_000, "max_seconds": 150, **kw}
        writer = SentinelWriterProcess.for_group(self.env, NS, GROUP, **kw)
        writer.start()
        time.sleep(1.0)  # the child is up and writing
        return writer

    # --- the tool ----------------------------------------------------------------------------
    def deps(self) -> Deps:
        return Deps(Settings())

    def retire(self, *pods: str) -> NodeTarget:
        """Taint the node of `pods[0]` (and of the others) as this run's old nodes; its target."""
        with self.env.applied(**self.settings):
            kube = self.deps().kube(self.env.cluster_name)
            for p in pods:
                kube.add_taint(self.pod(p)["spec"]["nodeName"], Settings().taint_key, RUN)
        node = self.pod(pods[0])["spec"]["nodeName"]
        n = self.env.sandbox.store.get("nodes", None, node)
        assert n is not None
        iid = n["spec"]["providerID"].rsplit("/", 1)[-1]
        return NodeTarget(
            instance_id=iid, node_name=node, az=n["metadata"]["labels"][LABEL_TOPOLOGY_ZONE], pods=1
        )

    def drive(
        self,
        node: NodeTarget,
        *,
        timeout: float = 120,
        until_phase: str | None = None,
        out: MoveRedisPodsOutput | None = None,
    ) -> tuple[MoveRedisPodsOutput, list[str]]:
        """MoveRedisPods rounds until done (or a move reached `until_phase`); raises what a round
        raises, as the Lambda would."""
        actions: list[str] = []
        deadline = time.monotonic() + timeout
        with self.env.applied(**self.settings):
            while True:
                out = move_redis_pods(MoveRedisPodsInput(ctx=self.ctx, node=node, redis=out), self.deps())
                actions += out.actions
                if out.done or (until_phase and any(m.phase == until_phase for m in out.moves)):
                    return out, actions
                assert time.monotonic() < deadline, (
                    out.detail,
                    [m.data.get("waiting") for m in out.moves],
                    actions,
                )
                time.sleep(min(out.next_wait_s, 0.1))

    def health(self) -> Any:
        with self.env.applied(**self.settings):
            deps = self.deps()
            (group,) = [g for g in groups_of(deps.kube(self.env.cluster_name)) if g.name == GROUP]
            return SentinelProcedure().health(env_for(group, self.ctx, deps))

    def cleanup(self) -> list[str]:
        with self.env.applied(**self.settings):
            return redis_cleanup(self.ctx, self.deps())


# Node k of a sandbox gets pod IPs 127.k.0.x; sessions that run at once (another engineer's tests)
# start at index 1. Ours take a free block of indices in 150-239, pid-derived.
_LOW, _HIGH, _BLOCK = 150, 240, 24


def private_node_indices(monkeypatch: Any) -> int:
    """Point the sandbox's first node index at a block no running process uses; return it."""
    span = _HIGH - _LOW - _BLOCK
    for step in range(span):
        base = _LOW + (os.getpid() + step * 7) % span
        if not any(index_in_use(k) for k in range(base, base + _BLOCK)):
            monkeypatch.setenv(FIRST_NODE_INDEX_ENV, str(base))
            return base
    raise RuntimeError("no free block of sandbox node indices")


def wait_for(pred: Any, timeout: float, what: str, interval: float = 0.1, describe: Any = None) -> float:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"timed out after {timeout}s waiting for {what}" + (
            f": {describe()}" if describe else ""
        )
        time.sleep(interval)
    return time.monotonic() - t0
