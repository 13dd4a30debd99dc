"""Roll-scale benchmark (not a test): roll stateless node groups of growing size through the real
state machine and measure duration, history events per node (the 25,000-event budget) and
evictions, compared as ratios within one run.

Run: .venv/bin/python bench/roll_scale.py [--sizes 6,12,24] [--batch 3] [--pods-per-node 10]
"""

from __future__ import annotations

import argparse
import json
import time

from eks_rolling.planning.plan import estimate_history_events
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.scenarios import (
    Scenario,
    _network,
    _node_group,
    wait_nodes_ready,
    wait_workloads_ready,
)


def stateless(env: SandboxEnv, nodes: int, pods_per_node: int) -> Scenario:
    azs = (f"{env.region}a", f"{env.region}b")
    subnets = _network(env, azs)
    env.aws("eks").create_cluster(
        name=env.cluster_name,
        version="1.32",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": subnets},
    )
    lt = _node_group(
        env,
        "workers",
        subnets,
        desired=nodes,
        min_size=1,
        max_size=nodes + 10,
        ami="ami-0aaaaaaaaaaaaaaa1",
        opted_in=True,
        labels={"role": "worker"},
    )
    wait_nodes_ready(env, nodes, timeout=120)
    env.sandbox.apply(m.namespace("apps"))
    for d in range(max(nodes * pods_per_node // 10, 1)):
        env.sandbox.apply(m.deployment(f"svc-{d}", "apps", 10))
        env.sandbox.apply(m.pdb(f"svc-{d}", "apps", selector={"app": f"svc-{d}"}, max_unavailable=1))
    wait_workloads_ready(env, timeout=300)
    return Scenario(env=env, asg_name="workers", launch_template_id=lt, azs=azs)


def run(nodes: int, batch: int, pods_per_node: int) -> dict[str, float]:
    with SandboxEnv() as env:
        sc = stateless(env, nodes, pods_per_node)
        settings = {
            "batch_size": str(batch),
            "deregistration_delay_s": "10",
            "poll_interval_s": "5",
            "drain_timeout_s": "600",
            "owners_ready_timeout_s": "600",
            "new_nodes_timeout_s": "600",
        }
        with LocalRunner(env, time_scale=0.05, settings=settings) as runner:
            mark = env.sandbox.request_log.mark()
            t0 = time.monotonic()
            result = runner.run(sc.bump_launch_template(), timeout=1800)
            duration = time.monotonic() - t0
            events = len(runner.history(result["executionArn"]))
        evictions = [e for e in env.sandbox.request_log.entries(mark) if e.path.endswith("/eviction")]
        batches = -(-nodes // batch)
        return {
            "nodes": nodes,
            "pods": nodes * pods_per_node,
            "status": result["status"],
            "duration_s": round(duration, 1),
            "s_per_node": round(duration / nodes, 2),
            "history_events": events,
            "events_per_node": round(events / nodes, 1),
            "planner_estimate": estimate_history_events(nodes, batches),
            "evictions_201": sum(1 for e in evictions if e.status == 201),
            "evictions_429": sum(1 for e in evictions if e.status == 429),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="6,12,24")
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--pods-per-node", type=int, default=10)
    args = parser.parse_args()
    rows = [run(int(n), args.batch, args.pods_per_node) for n in args.sizes.split(",")]
    print(json.dumps(rows, indent=1))
    base = rows[0]
    for r in rows[1:]:
        print(
            f"{r['nodes']} vs {base['nodes']} nodes: duration x{r['duration_s'] / base['duration_s']:.2f}, events per node {r['events_per_node']} vs {base['events_per_node']} (planner budgets {r['planner_estimate'] / r['nodes']:.0f})"
        )


if __name__ == "__main__":
    main()
