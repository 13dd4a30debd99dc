"""Redis Cluster migration benchmark (not a test): move every pod of the field report's Redis
Cluster (3 masters, 3 replicas, real redis-server processes) off its tainted node with the real
procedure while a RedisCluster client writes, and print the worst write latency around each
failover and the total migration time per pod.

The writer runs in its own process (`ProcessClusterWriter`), so what it measures is Redis and
the client, not the GIL of the sandbox process. Pods are driven with MoveRedisPods rounds back to back (the state machine's
Wait between rounds is left out: its time is Step Functions', not the migration's).

Run: .venv/bin/python bench/cluster_migration.py [--interval-ms 2] [--json build/cluster-migration.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE, REDIS_PORT
from eks_rolling.models import MoveRedisPodsInput, MoveRedisPodsOutput, NodeTarget, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.redis import move_redis_pods
from eks_rolling.settings import Settings
from eks_rolling_sandbox.api.objects import node_is_ready
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.traffic.redis_cluster import ProcessClusterWriter

NS = "redis"
RUN = "bench-cluster-migration"


# --- driving the procedure ---------------------------------------------------------------------
@dataclass
class Round:
    start: float
    end: float
    actions: list[str]


@dataclass
class PodRun:
    pod: str
    role: str = "?"
    rounds: list[Round] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return self.rounds[-1].end - self.rounds[0].start

    def failovers(self) -> list[tuple[str, float, float]]:
        """(name, window start, window end): from the round that sent CLUSTER FAILOVER to the
        round that saw the roles agree on every node."""
        out, opened = [], None
        for r in self.rounds:
            text = " ".join(r.actions)
            if opened is not None and "verified on all" in text:
                out.append(("to temp" if not out else "failback", opened, r.end))
                opened = None
            if "CLUSTER FAILOVER on" in text:
                opened = r.start
        return out


def _ctx(env: SandboxEnv) -> RollContext:
    return RollContext(
        execution_id=f"arn:aws:states:{env.region}:123456789012:execution:eks-rolling:{RUN}",
        asg_name="eks-workers",
        cluster_name=env.cluster_name,
        taint_value=RUN,
    )


def _prepare(env: SandboxEnv) -> dict[str, Any]:
    scenario = field_report(env, redis=True, redis_kinds=("cluster",))
    store = env.sandbox.store
    old = [
        n["metadata"]["name"] for n in store.all("nodes") if n["metadata"]["labels"].get("role") == "worker"
    ]
    asg = env.aws("autoscaling")
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[scenario.asg_name])["AutoScalingGroups"][0]
    want = g["DesiredCapacity"] + 2 * len(scenario.azs)  # room for a temp pod and its master per zone
    asg.update_auto_scaling_group(AutoScalingGroupName=scenario.asg_name, MaxSize=want, DesiredCapacity=want)
    env.sandbox.wait_for(
        lambda: (
            sum(1 for n in store.all("nodes") if node_is_ready(n)) >= len(old) + 2 + 2 * len(scenario.azs)
        ),
        timeout=60,
        what="new nodes",
    )
    with env.applied():
        kube = Deps(Settings()).kube(env.cluster_name)
        for name in old:
            kube.add_taint(name, Settings().taint_key, RUN)
    layout: dict[str, Any] = scenario.extras["redis_cluster"]
    return layout


def _move(env: SandboxEnv, pod: str) -> PodRun:
    store = env.sandbox.store
    p = store.get("pods", NS, pod)
    assert p is not None
    node = store.get("nodes", None, p["spec"]["nodeName"])
    assert node is not None
    target = NodeTarget(
        instance_id=node["spec"]["providerID"].rsplit("/", 1)[-1],
        node_name=node["metadata"]["name"],
        az=node["metadata"]["labels"][LABEL_TOPOLOGY_ZONE],
        pods=1,
    )
    run = PodRun(pod)
    out: MoveRedisPodsOutput | None = None
    with env.applied(redis_phase_timeout_s="120"):
        while out is None or not out.done:
            t0 = time.monotonic()
            out = move_redis_pods(MoveRedisPodsInput(ctx=_ctx(env), node=target, redis=out), Deps(Settings()))
            run.rounds.append(Round(t0, time.monotonic(), list(out.actions)))
            if out.moves and out.moves[0].data.get("kind"):
                run.role = str(out.moves[0].data["kind"])
    return run


def _worst(writes: list[tuple[int, float, float, bool]], start: float, end: float) -> tuple[float, int, int]:
    inside = [w for w in writes if w[1] < end and w[2] > start]
    worst = max(((w[2] - w[1]) * 1000 for w in inside), default=0.0)
    return worst, len(inside), sum(1 for w in inside if not w[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval-ms", type=float, default=2.0, help="pause between two writes")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    with SandboxEnv(redis=True) as env:
        layout = _prepare(env)
        writer = ProcessClusterWriter(
            [(ip, REDIS_PORT) for ip in layout["ips"].values()],
            prefix="b",
            interval_s=args.interval_ms / 1000,
            max_writes=1_000_000,
            max_seconds=600,
        ).start()
        time.sleep(3.0)  # the process is up and writing before the first move
        order = sorted(layout["ips"], key=lambda p: (p in layout["masters"], p))
        runs = [_move(env, pod) for pod in order]
        time.sleep(1.0)
        writer.stop()
        now = [(env.sandbox.store.get("pods", NS, p) or {})["status"]["podIP"] for p in layout["ips"]]
        lost = writer.verify([(ip, REDIS_PORT) for ip in now])
        writes, acked = writer.writes, writer.acked

    windows = [(r, name, a, b) for r in runs for name, a, b in r.failovers()]
    outside = [
        (w[2] - w[1]) * 1000
        for w in writes
        if not any(a <= w[1] <= b or a <= w[2] <= b for _, _, a, b in windows)
    ]
    result: dict[str, Any] = {"pods": [], "writes": {}}
    print(
        f"{'pod':<20} {'role':<8} {'total s':>8}  failovers (verified after s, worst write latency ms, writes, errors)"
    )
    for r in runs:
        fos = []
        for name, a, b in r.failovers():
            worst, n, errs = _worst(writes, a, b)
            fos.append(
                {
                    "failover": name,
                    "verified_s": round(b - a, 3),
                    "worst_latency_ms": round(worst, 1),
                    "writes": n,
                    "errors": errs,
                }
            )
        result["pods"].append(
            {"pod": r.pod, "role": r.role, "total_s": round(r.total_s, 2), "failovers": fos}
        )
        text = "; ".join(
            f"{f['failover']}: {f['verified_s']:.2f}s, {f['worst_latency_ms']:.1f} ms, {f['writes']} w, {f['errors']} err"
            for f in fos
        )
        print(f"{r.pod:<20} {r.role:<8} {r.total_s:8.2f}  {text or '-'}")
    result["writes"] = {
        "acked": len(acked),
        "errors": sum(1 for w in writes if not w[3]),
        "lost": lost,
        "worst_latency_ms": round(max((w[2] - w[1]) * 1000 for w in writes), 1),
        "median_latency_ms_outside_failovers": round(statistics.median(outside), 2) if outside else None,
        "worst_latency_ms_outside_failovers": round(max(outside), 1) if outside else None,
    }
    w = result["writes"]
    print(
        f"writes: {w['acked']} acked, {w['errors']} errors, {w['lost']} acknowledged writes lost; worst latency "
        f"{w['worst_latency_ms']} ms (outside failovers: median {w['median_latency_ms_outside_failovers']} ms, "
        f"worst {w['worst_latency_ms_outside_failovers']} ms)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
