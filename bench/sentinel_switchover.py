"""Sentinel switchover benchmark (not a test): on ONE Redis Sentinel group (the field report's:
master, 2 replicas, 3 sentinels, real redis-server processes) and with ONE writer running through
a Sentinel-aware client for the whole run, compare

  1. the tool's switchover: the Sentinel procedure's own phases (priority steering, CLIENT PAUSE
     WRITE, offset catch-up, SENTINEL FAILOVER through one sentinel timed to its INFO cycle,
     REPLICAOF + UNPAUSE in one MULTI), and
  2. a bare SENTINEL FAILOVER sent to one sentinel (what the field report did),

and print, for each, the acknowledged writes lost and the longest write gap. Lost writes are
counted per window (the writes attempted during it) once replication has settled.

Run: .venv/bin/python bench/sentinel_switchover.py [--settle-s 15] [--json build/sentinel-switchover.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import redis

from eks_rolling.labels import REDIS_PORT, SENTINEL_PORT
from eks_rolling.models import RedisMove, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.redis import env_for, groups_of
from eks_rolling.services.redis.sentinel import SentinelProcedure
from eks_rolling.settings import Settings
from eks_rolling_sandbox.cloud.bridge import FIRST_NODE_INDEX_ENV
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.redis.runtime import read_secret
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.traffic.redis_sentinel import sentinel_writer
from eks_rolling_sandbox.traffic.writers import SentinelWriter

NS, GROUP, MASTER_SET = "redis", "redis", "mymaster"
SENTINELS = ("redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2")
GAP_FLOOR_MS = 20.0
CTX = RollContext(
    execution_id="arn:aws:states:us-east-1:123456789012:execution:eks-rolling:bench",
    asg_name="eks-workers",
    cluster_name="sandbox",
    taint_value="bench-sentinel",
)


class Group:
    def __init__(self, env: SandboxEnv) -> None:
        self.env = env
        self.password = read_secret(env.sandbox.store, NS, "redis-auth", "redis-password")

    def ip(self, pod: str) -> str:
        p = self.env.sandbox.store.get("pods", NS, pod)
        assert p is not None
        return str(p["status"]["podIP"])

    def sentinel(self, pod: str) -> redis.Redis:
        return redis.Redis(self.ip(pod), SENTINEL_PORT, socket_timeout=2, decode_responses=True)

    def master_ip(self) -> str | None:
        """The master every sentinel names, None while they disagree."""
        named = set()
        for s in SENTINELS:
            with self.sentinel(s) as c:
                named.add(c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_SET)[0])
        return named.pop() if len(named) == 1 else None

    def pod_of(self, ip: str | None) -> str:
        return next(
            (
                p["metadata"]["name"]
                for p in self.env.sandbox.store.all("pods")
                if p["status"].get("podIP") == ip
            ),
            str(ip),
        )

    def role(self, ip: str) -> str:
        with redis.Redis(
            ip, REDIS_PORT, password=self.password, socket_timeout=2, decode_responses=True
        ) as r:
            return str(r.info("replication")["role"])

    def converged(self) -> bool:
        try:
            for s in SENTINELS:
                with self.sentinel(s) as c:
                    state = c.execute_command("SENTINEL", "MASTER", MASTER_SET)
                if int(state["num-slaves"]) != 2 or int(state["num-other-sentinels"]) != 2:
                    return False
        except (redis.RedisError, OSError):
            return False
        return self.master_ip() is not None


def wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waiting for {what}")
        time.sleep(0.1)


def tool_switchover(env: SandboxEnv, group: Group, target: str) -> dict[str, Any]:
    """The procedure's steer -> switchover -> confirm phases for the current master, round by round."""
    master = group.pod_of(group.master_ip())
    pod = env.sandbox.store.get("pods", NS, master)
    assert pod is not None
    move = RedisMove(
        namespace=NS,
        group=GROUP,
        kind="sentinel",
        pod=master,
        role="master",
        statefulset=master.rsplit("-", 1)[0],
        phase="steer",
        data={"uid": pod["metadata"]["uid"], "flow": "master", "target": target},
    )
    proc, actions = SentinelProcedure(), list[str]()
    with env.applied():
        while move.phase != "move":
            deps = Deps(Settings())
            (g,) = [g for g in groups_of(deps.kube(CTX.cluster_name)) if g.name == GROUP]
            adv = proc.advance(move, env_for(g, CTX, deps))
            move, actions = adv.move, actions + adv.actions
            time.sleep(min(adv.wait_s, 1) * 0.2)
    (record,) = move.data["switchovers"]
    return {"from": master, "to": target, "record": record, "actions": actions}


def bare_failover(group: Group, settle_s: float) -> dict[str, Any]:
    """SENTINEL FAILOVER through one sentinel; wait until Sentinel has converted the old master."""
    old = group.master_ip()
    assert old is not None
    t0 = time.monotonic()
    with group.sentinel(SENTINELS[0]) as s:
        s.execute_command("SENTINEL", "FAILOVER", MASTER_SET)
    wait(lambda: group.master_ip() not in (None, old), 30, "the sentinels to name a new master")
    agreed = time.monotonic() - t0
    wait(lambda: group.role(old) == "slave", 60, "Sentinel to convert the old master")
    converted = time.monotonic() - t0
    time.sleep(settle_s)
    return {
        "from": group.pod_of(old),
        "to": group.pod_of(group.master_ip()),
        "agreed_s": agreed,
        "converted_s": converted,
    }


def lost_by_window(writer: SentinelWriter, group: Group, windows: list[tuple[int, int]]) -> list[int]:
    """Acked writes whose key does not hold its value on the final master, per index window."""
    ip = group.master_ip()
    assert ip is not None
    acked = writer.acked_indices
    lost: set[int] = set()
    with redis.Redis(ip, REDIS_PORT, password=group.password, socket_timeout=5, decode_responses=True) as r:
        for start in range(0, len(acked), 1000):
            batch = acked[start : start + 1000]
            values = r.mget([writer.key(i) for i in batch])
            lost |= {i for i, v in zip(batch, values, strict=True) if v != str(i)}
    return [sum(1 for i in lost if lo <= i < hi) for lo, hi in windows]


def longest_gap(writer: SentinelWriter, t_from: float, t_to: float) -> float:
    """The longest interval between two acks that began in the window (GAP_FLOOR_MS if none longer)."""
    gaps = [g.length_ms for g in writer.report().gaps if t_from <= g.started_at <= t_to]
    return max(gaps, default=GAP_FLOOR_MS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settle-s", type=float, default=15.0, help="quiet time after each switchover")
    ap.add_argument("--interval-ms", type=float, default=5.0, help="pause between the writer's SETs")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault(FIRST_NODE_INDEX_ENV, str(120 + os.getpid() % 80))  # away from test sessions
    t_start = time.monotonic()
    with SandboxEnv(redis=True) as env:
        field_report(env, redis=True, redis_kinds=("sentinel",))
        group = Group(env)
        wait(group.converged, 60, "the sentinels to converge")
        writer = sentinel_writer(
            env,
            NS,
            GROUP,
            interval_s=args.interval_ms / 1000,
            max_writes=10_000_000,
            max_seconds=600,
            gap_threshold_ms=GAP_FLOOR_MS,  # keep every hiccup, so each window's longest is known
        )
        writer.start()
        time.sleep(2.0)

        a0, t0 = writer.report().attempted, time.monotonic()
        tool = tool_switchover(env, group, target="redis-replica-0")
        time.sleep(args.settle_s)
        a1, t1 = writer.report().attempted, time.monotonic()
        bare = bare_failover(group, args.settle_s)
        a2, t2 = writer.report().attempted, time.monotonic()

        report = writer.stop()
        total_lost = writer.verify()
        lost_tool, lost_bare = lost_by_window(writer, group, [(a0, a1), (a1, a2)])
        results: dict[str, Any] = {
            "writer": {
                "attempted": report.attempted,
                "acked": report.acked,
                "errors": report.errors,
                "lost": total_lost,
            },
            "tool_switchover": {
                "from": tool["from"],
                "to": tool["to"],
                "writes_attempted": a1 - a0,
                "acked_writes_lost": lost_tool,
                "longest_write_gap_ms": longest_gap(writer, t0, t1),
                "writes_held_ms": tool["record"]["paused_ms"],
            },
            "bare_sentinel_failover": {
                "from": bare["from"],
                "to": bare["to"],
                "writes_attempted": a2 - a1,
                "acked_writes_lost": lost_bare,
                "longest_write_gap_ms": longest_gap(writer, t1, t2),
                "sentinels_agreed_s": round(bare["agreed_s"], 2),
                "old_master_converted_s": round(bare["converted_s"], 2),
            },
            "run_s": round(time.monotonic() - t_start, 1),
        }
    print(f"{'':28}{'lost acked writes':>20}{'longest write gap':>20}{'writes in window':>18}")
    for name, key in (
        ("tool switchover", "tool_switchover"),
        ("bare SENTINEL FAILOVER", "bare_sentinel_failover"),
    ):
        r = results[key]
        print(
            f"{name:28}{r['acked_writes_lost']:>20}{r['longest_write_gap_ms']:>17.0f} ms{r['writes_attempted']:>18}"
        )
    print(
        f"bare failover: sentinels agreed after {results['bare_sentinel_failover']['sentinels_agreed_s']} s, "
        f"Sentinel converted the old master after {results['bare_sentinel_failover']['old_master_converted_s']} s; "
        f"tool: writes held {results['tool_switchover']['writes_held_ms']:.0f} ms"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
