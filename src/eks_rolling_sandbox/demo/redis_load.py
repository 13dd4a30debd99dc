"""The Redis side of `eks-rolling demo`: a client writing to each Redis group of the field-report
scenario for the whole roll (each in its own process, so it measures Redis, not this busy one),
a slot-coverage monitor on the Redis Cluster, and the report's `redis` section afterwards.

No upstream counterpart.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from eks_rolling.labels import REDIS_GROUP, REDIS_PORT

from ..env import SandboxEnv
from ..redis.manifests import group_password
from ..scenarios import Scenario
from ..traffic.redis_cluster import ProcessClusterWriter, SlotCoverageMonitor, cluster_report
from ..traffic.redis_sentinel import SentinelWriterProcess, sentinel_report, sentinel_state

NAMESPACE = "redis"
SENTINEL_GROUP, CLUSTER_GROUP = "redis", "redis-cluster"
# Bounded load: one write every 10 ms per client, for at most the roll's timeout.
WRITE_INTERVAL_S = 0.01
# A freshly started Sentinel group needs a few hello/INFO rounds before every sentinel knows
# every replica and peer: the roll's Plan would (rightly) call it unhealthy before that.
CONVERGE_TIMEOUT_S = 60.0


class RedisLoad:
    def __init__(self, env: SandboxEnv, scenario: Scenario, *, max_seconds: float) -> None:
        self.env, self.scenario = env, scenario
        self.max_seconds = max_seconds
        self.monitor: SlotCoverageMonitor | None = None
        self.cluster_writer: ProcessClusterWriter | None = None
        self.sentinel_writer: SentinelWriterProcess | None = None
        self._finished = False

    def start(self, say: Callable[[str], None]) -> RedisLoad:
        t0 = time.monotonic()
        while not sentinel_state(self.env, NAMESPACE, SENTINEL_GROUP)["converged"]:
            if time.monotonic() - t0 > CONVERGE_TIMEOUT_S:
                raise RuntimeError(
                    f"the sandbox's Sentinel group did not converge in {CONVERGE_TIMEOUT_S:.0f}s: "
                    f"{sentinel_state(self.env, NAMESPACE, SENTINEL_GROUP)}"
                )
            time.sleep(0.5)
        say(f"  Redis: sentinels agree on the master and every replica after {time.monotonic() - t0:.1f}s")
        self.sentinel_writer = SentinelWriterProcess.for_group(
            self.env,
            NAMESPACE,
            SENTINEL_GROUP,
            interval_s=WRITE_INTERVAL_S,
            max_writes=10**6,
            max_seconds=self.max_seconds,
        )
        self.sentinel_writer.start()
        layout = self.scenario.extras["redis_cluster"]
        self.monitor = SlotCoverageMonitor(self.env, NAMESPACE, CLUSTER_GROUP).start()
        self.cluster_writer = ProcessClusterWriter(
            [(ip, REDIS_PORT) for ip in layout["ips"].values()],
            interval_s=WRITE_INTERVAL_S,
            max_writes=10**6,
            max_seconds=self.max_seconds,
            password=self._cluster_password(),
        ).start()
        say(
            "  Redis: a client writing through Sentinel and one writing to the Redis Cluster, "
            "every 10 ms each, for the whole roll"
        )
        return self

    def _cluster_password(self) -> str | None:
        sts = next(
            s
            for s in self.env.sandbox.store.all("statefulsets")
            if s["metadata"]["namespace"] == NAMESPACE
            and (s["metadata"].get("annotations") or {}).get(REDIS_GROUP) == CLUSTER_GROUP
        )
        return group_password(self.env.sandbox, sts)

    def finish(self, say: Callable[[str], None]) -> dict[str, Any]:
        """Stop the writers, read every acknowledged write back, and report both groups. Waits
        until 65 s after a temporary Cluster node was last seen (its FORGET ban window)."""
        assert self.sentinel_writer and self.cluster_writer and self.monitor, "start() first"
        say("  Redis: stopping the writers and reading every acknowledged write back")
        self._finished = True
        sentinel = sentinel_report(
            self.env, NAMESPACE, SENTINEL_GROUP, self.sentinel_writer.stop(settle_s=1.0)
        )
        self.cluster_writer.stop()
        store = self.env.sandbox.store
        # Every original IP changed: read back through the pods' current addresses.
        self.cluster_writer.verify(
            [
                (store.require("pods", NAMESPACE, name)["status"]["podIP"], REDIS_PORT)
                for name in self.scenario.extras["redis_cluster"]["ips"]
            ]
        )
        if self.monitor.last_foreign_seen is not None:
            left = 65 - (time.monotonic() - self.monitor.last_foreign_seen)
            if left > 0:
                say(
                    f"  Redis: checking for temporary Cluster nodes once their FORGET ban lapses (~{left:.0f}s)"
                )
        cluster = cluster_report(
            self.env, NAMESPACE, CLUSTER_GROUP, self.cluster_writer.report(), self.monitor
        )
        return {"sentinel": sentinel, "cluster": cluster}

    def stop(self) -> None:
        """After finish() or on an error path: end the writer processes and the monitor."""
        if not self._finished:
            # Best effort on the way out: the error that brought us here is the one to report.
            with contextlib.suppress(Exception):
                if self.sentinel_writer is not None:
                    self.sentinel_writer.stop(timeout_s=10)
            with contextlib.suppress(Exception):
                if self.cluster_writer is not None:
                    self.cluster_writer.stop(timeout_s=10)
        if self.monitor is not None:
            self.monitor.stop()


def summary_lines(redis: dict[str, Any]) -> list[str]:
    s, c = redis["sentinel"], redis["cluster"]
    return [
        f"  Redis Sentinel: {s['acked_writes_lost']} of {s['acked_writes']} acknowledged writes lost; "
        f"write errors {s['write_errors']} after retrying {s['write_retries']} {s['write_retry_types']}; "
        f"longest write gap {s['max_write_gap_ms']:.0f} ms (per switchover: {s['switchover_gaps_ms']}); "
        f"stale sentinel entries {len(s['stale_replicas'])}; master on {s['master_pod']}; quorum OK {s['quorum_ok']}",
        f"  Redis Cluster:  {c['acked_writes_lost']} of {c['acked_writes']} acknowledged writes lost; "
        f"worst write latency {c['max_write_latency_ms']:.0f} ms; uncovered slots max {c['uncovered_slots_max']}; "
        f"temporary nodes left {c['leftover_temp_nodes']}; node ids kept {c['node_ids_kept']}; "
        f"masters in place {c['masters_in_place']}",
    ]
