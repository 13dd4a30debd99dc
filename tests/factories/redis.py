"""Helpers for the sandbox Redis tests: a Sandbox whose kubelet runs real redis-server processes.

Nodes use indices >= 100 (pod IPs 127.1xx.*), picked per test so that concurrent sessions and
consecutive tests never share an address.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from kubernetes import client as k8s

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE, REDIS_PORT, SENTINEL_PORT
from eks_rolling.models import RollContext
from eks_rolling_sandbox.api.objects import condition, node_object, pod_is_ready, set_condition
from eks_rolling_sandbox.cloud.bridge import index_in_use
from eks_rolling_sandbox.redis import procs as redis_procs
from eks_rolling_sandbox.redis.manifests import apply_all, namespace_manifest
from eks_rolling_sandbox.redis.runtime import RedisRuntime
from eks_rolling_sandbox.sandbox import Sandbox

REGION = "us-east-1"
ZONE_A, ZONE_B = "us-east-1a", "us-east-1b"
ROLL_TAINT = {"key": "eks-rolling.io/rolling", "value": "true", "effect": "NoSchedule"}

requires_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")

# Node index k gives pod IPs 127.k.0.2+; indices 100-199 are ours, starting at a pid-derived offset.
_indices = itertools.cycle([100 + (i + os.getpid()) % 100 for i in range(100)])


def free_indices(count: int) -> list[int]:
    out: list[int] = []
    for _ in range(200):
        k = next(_indices)
        if k not in out and not index_in_use(k, pods=range(2, 40)):
            out.append(k)
            if len(out) == count:
                return out
    raise RuntimeError("no free node indices in 100-199")


@dataclass
class RedisSandbox:
    """A started Sandbox with the Redis runtime and hand-made Ready nodes."""

    sandbox: Sandbox
    runtime: RedisRuntime
    root: Path
    nodes: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    _api: Any = None
    _stopped: bool = False

    @property
    def store(self) -> Any:
        return self.sandbox.store

    @property
    def core(self) -> Any:
        """The official client's CoreV1Api bound to the sandbox."""
        if self._api is None:
            self._api = k8s.CoreV1Api(self.sandbox.client())
        return self._api

    def add_node(self, zone: str, index: int) -> str:
        name = f"node-{index}"
        obj = node_object(
            name,
            instance_id=f"i-{index:017x}",
            az=zone,
            region=REGION,
            instance_type="m5.large",
            index=index,
        )
        self.sandbox.registry.create("nodes", None, obj)

        def ready(cur: dict[str, Any]) -> dict[str, Any]:
            cur["status"]["conditions"] = set_condition(
                cur["status"]["conditions"],
                condition("Ready", True, "KubeletReady", "kubelet is posting ready"),
            )
            return cur

        self.store.mutate("nodes", None, name, ready)
        self.nodes.append(name)
        self.indices.append(index)
        return name

    def taint(self, node: str) -> None:
        def add(cur: dict[str, Any]) -> dict[str, Any]:
            cur["spec"]["taints"] = [*(cur["spec"].get("taints") or []), dict(ROLL_TAINT)]
            return cur

        self.store.mutate("nodes", None, node, add)

    def zone_of(self, node: str) -> str:
        return str(self.store.get("nodes", None, node)["metadata"]["labels"][LABEL_TOPOLOGY_ZONE])

    def pod(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.store.get("pods", ns, name)  # type: ignore[no-any-return]

    def wait_ready(self, ns: str, names: list[str], timeout: float = 30) -> dict[str, dict[str, Any]]:
        def ready() -> dict[str, dict[str, Any]] | None:
            pods = {n: self.pod(ns, n) for n in names}
            if all(
                p is not None and pod_is_ready(p) and "deletionTimestamp" not in p["metadata"]
                for p in pods.values()
            ):
                return pods  # type: ignore[return-value]
            return None

        return self.sandbox.wait_for(ready, timeout=timeout, interval=0.05, what=f"pods {names} Ready")

    def wait_replaced(self, ns: str, name: str, old_uid: str, timeout: float = 30) -> dict[str, Any]:
        """Wait until pod `name` exists again with another UID and is Ready."""

        def back() -> dict[str, Any] | None:
            p = self.pod(ns, name)
            if p and p["metadata"]["uid"] != old_uid and pod_is_ready(p):
                return p
            return None

        return self.sandbox.wait_for(back, timeout=timeout, interval=0.02, what=f"{name} recreated and Ready")

    def apply(self, manifests: list[dict[str, Any]]) -> None:
        """Apply manifests, creating their namespaces first."""
        namespaces = {m["metadata"]["namespace"] for m in manifests if m["metadata"].get("namespace")}
        apply_all(self.sandbox, [*(namespace_manifest(ns) for ns in sorted(namespaces)), *manifests])

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.sandbox.stop()
        self.runtime.close()


def leftover_processes(env: RedisSandbox) -> list[str]:
    """redis-server processes of this sandbox: in the runtime's registry, or in the OS process
    table (redis retitles itself ``redis-server <ip>:<port>``, so match the nodes' IP ranges)."""
    mine = [repr(p) for p in redis_procs.running_processes() if str(p.cfg.data_dir).startswith(str(env.root))]
    ranges = "|".join(str(k) for k in env.indices)
    out = subprocess.run(
        ["pgrep", "-af", rf"redis-(server|sentinel) 127\.({ranges})\."],
        capture_output=True,
        text=True,
        check=False,
    )
    return mine + out.stdout.splitlines()


# --- redis helpers ---------------------------------------------------------------------------
def rclient(
    ip: str, port: int = REDIS_PORT, password: str | None = None, timeout: float = 2.0
) -> redis.Redis:
    return redis.Redis(
        host=ip,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    )


def sentinel_replicas(sentinel_ip: str, master_set: str = "mymaster") -> dict[str, set[str]]:
    """``SENTINEL REPLICAS`` of one sentinel as {ip: flags}."""
    with rclient(sentinel_ip, SENTINEL_PORT) as r:
        raw = r.execute_command("SENTINEL", "REPLICAS", master_set)
    out: dict[str, set[str]] = {}
    for entry in raw:
        # RESP3 (redis-py 8 default) gives maps, RESP2 flat lists.
        fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
        out[fields["ip"]] = set(fields["flags"].split(","))
    return out


def sentinel_peers(sentinel_ip: str, master_set: str = "mymaster") -> dict[str, set[str]]:
    """``SENTINEL SENTINELS`` of one sentinel as {ip: flags}."""
    with rclient(sentinel_ip, SENTINEL_PORT) as r:
        raw = r.execute_command("SENTINEL", "SENTINELS", master_set)
    out: dict[str, set[str]] = {}
    for entry in raw:
        fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
        out[fields["ip"]] = set(fields["flags"].split(","))
    return out


def sentinel_master_addr(sentinel_ip: str, master_set: str = "mymaster") -> str | None:
    with rclient(sentinel_ip, SENTINEL_PORT) as r:
        reply = r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_set)
    return str(reply[0]) if reply else None


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll until `pred` is true; return the seconds it took. Redis/socket errors mean "not yet"."""
    t0 = time.monotonic()
    if not redis_procs.wait_until(lambda: bool(pred()), timeout, interval):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return time.monotonic() - t0


def run_context(run: str) -> RollContext:
    """The context a MoveRedisPods round gets from the state machine, for a run named `run`
    (its taint value is the execution name, as in a real roll)."""
    return RollContext(
        execution_id=f"arn:aws:states:us-east-1:123456789012:execution:eks-rolling:{run}",
        asg_name="eks-workers",
        cluster_name="sandbox",
        taint_value=run,
    )
