"""Roll-scale benchmark (issue 11 item 5; not a test): roll stateless node groups through the real
state machines (parent + wave children) in the REALISTIC timing profile (60-120 s boots, pod
start, grace periods, the tool's default polls and deadlines, all scaled by one time factor) and
write build/bench/roll-scale.json, one row per size.

Scenario per size: `nodes` old nodes, 15 pods per node in 10-replica Deployments, a PDB on every
Deployment (maxUnavailable 1, 20 % and 30 % in turn). `serial_s`: the same scenario rolled one node
at a time (batch_size 1, cordon-and-drain style) measured at `--serial-nodes` and extrapolated
linearly to each size (said so in the row). `lower_bound_s`: see lower_bound_s() and the README.

Run: .venv/bin/python bench/roll_scale.py [--sizes 30,300] [--serial-nodes 30] [--factor 0.5]
[--serial-factor 0.05] [--size-factor 1000=F]
The factor is wall seconds per real second: 0.5 runs the roll at half its real duration, 2 at
twice it (up to timing.MAX_TIME_FACTOR: the one process then has 2 CPU-seconds per second of the
roll, closer to what separate Lambdas and a real API server have). Waves
together drain every old node at once; at 0.05 this one-process sandbox falls behind the clock
and the row would measure the machine (in a 30-node roll at 0.05, rounds asked to wait 5 s came 23-51 s apart).
The serial roll moves one node at a time and keeps up at 0.05.
(A roll launches one new instance per old one, and each instance takes one of the sandbox's
MAX_NODE_INDEX node indices for the run: sizes above half of that stop with an error.)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from eks_rolling.aws.asg import AsgOps
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import MAX_NODE_INDEX
from eks_rolling_sandbox.checks import leftovers
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.roll_counts import PHASES, count_roll, phase_seconds
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.scenarios import (
    Scenario,
    _network,
    _node_group,
    wait_nodes_ready,
    wait_workloads_ready,
)
from eks_rolling_sandbox.timing import REALISTIC
from eks_rolling_sandbox.traffic.availability import AvailabilityMonitor

OUT = Path("build/bench/roll-scale.json")
EXTRA_SETTINGS: dict[str, str] = {}  # --set KEY=VALUE: a setting of the tool for every roll
# What infra/workflow.py deploys (tests/unit/bench/test_roll_scale.py keeps them equal; `infra`
# is not importable from a script run as `python bench/roll_scale.py`).
LAMBDA_MEMORY_MB = 1024
REPLICAS = 10
PDB_MAX_UNAVAILABLE: tuple[int | str, ...] = (1, "20%", "30%")
DEREGISTRATION_DELAY_S = 30  # the tool's default (Settings.deregistration_delay_s)
# List prices, us-east-1, 2026: Step Functions Standard $0.025 per 1,000 state transitions; Lambda
# (x86) $0.20 per million requests and $0.0000166667 per GB-second.
USD_PER_TRANSITION = 0.025 / 1000
USD_PER_INVOCATION = 0.20 / 1_000_000
USD_PER_GB_S = 0.0000166667


def cost_per_1000_nodes(
    transitions_per_node: float, invocations_per_node: float, gb_s_per_node: float
) -> float:
    """USD per 1,000 replaced nodes at list prices (the free tiers left out)."""
    return round(
        1000
        * (
            transitions_per_node * USD_PER_TRANSITION
            + invocations_per_node * USD_PER_INVOCATION
            + gb_s_per_node * USD_PER_GB_S
        ),
        2,
    )


def allowed(max_unavailable: int | str, replicas: int) -> int:
    """Pods a PDB lets go at once (a percentage of maxUnavailable rounds up, as Kubernetes does)."""
    if isinstance(max_unavailable, str):
        return max(1, math.ceil(replicas * int(max_unavailable.rstrip("%")) / 100))
    return max(1, max_unavailable)


def deployments(
    nodes: int, pods_per_node: int, pdbs: tuple[int | str, ...] = PDB_MAX_UNAVAILABLE
) -> list[tuple[str, int | str]]:
    return [(f"svc-{d}", pdbs[d % len(pdbs)]) for d in range(max(nodes * pods_per_node // REPLICAS, 1))]


def lower_bound_s(nodes: int, pods_per_node: int, pdbs: tuple[int | str, ...] = PDB_MAX_UNAVAILABLE) -> float:
    """No roll of this scenario can be faster (real seconds): the slowest new node's boot (the
    profile's boot + Ready, +jitter), then the longest PDB-forced eviction chain (every pod of a
    Deployment sits on an old node; its PDB lets `allowed` go at a time and the next may go only
    when a replacement is Ready: pod start + ready), then the last node's deregistration delay."""
    boot = (REALISTIC.node_boot_s + REALISTIC.node_ready_s) * (1 + REALISTIC.jitter)
    step = REALISTIC.pod_start_s + REALISTIC.pod_ready_s
    chain = max(
        math.ceil(REPLICAS / allowed(mu, REPLICAS)) for _, mu in deployments(nodes, pods_per_node, pdbs)
    )
    return round(boot + chain * step + DEREGISTRATION_DELAY_S, 1)


def stateless(env: SandboxEnv, nodes: int, pods_per_node: int) -> Scenario:
    azs = (f"{env.region}a", f"{env.region}b")
    subnets = _network(env, azs, wide=True)
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
        max_size=nodes + 60,
        ami="ami-0aaaaaaaaaaaaaaa1",
        opted_in=True,
        labels={"role": "worker"},
    )
    wait_nodes_ready(env, nodes, timeout=120 + nodes)
    env.sandbox.apply(m.namespace("apps"))
    for name, mu in deployments(nodes, pods_per_node):
        env.sandbox.apply(m.deployment(name, "apps", REPLICAS))
        env.sandbox.apply(m.pdb(name, "apps", selector={"app": name}, max_unavailable=mu))
    wait_workloads_ready(env, timeout=300 + nodes)
    return Scenario(env=env, asg_name="workers", launch_template_id=lt, azs=azs)


def largest_state(histories: dict[str, list[dict[str, Any]]]) -> tuple[int, str]:
    """The largest state input or output of any execution (bytes), and where it was: execution
    name, state name and event type (a number over the 64 KiB target must say what to shrink)."""
    best = (0, "")
    for execution, history in histories.items():
        for ev in history:
            for key, field in (("stateEnteredEventDetails", "input"), ("stateExitedEventDetails", "output")):
                details = ev.get(key) or {}
                value = details.get(field)
                if value and len(value.encode()) > best[0]:
                    best = (
                        len(value.encode()),
                        f"{execution.rsplit(':', 1)[-1]} {details.get('name')} {ev['type']}",
                    )
    return best


def roll(nodes: int, batch: int, pods_per_node: int, factor: float, waves_at_once: int = 1) -> dict[str, Any]:
    with SandboxEnv(timing_profile="realistic", time_factor=factor) as env:
        t_setup = time.monotonic()
        with env.fast_forward():  # set-up is not measured: boot the old nodes at the small factor
            sc = stateless(env, nodes, pods_per_node)
        setup_s = time.monotonic() - t_setup
        print(f"{nodes} nodes and their pods ready after {setup_s:.0f} s wall; rolling", flush=True)
        before = AsgOps(env.aws("autoscaling"), env.aws("ec2")).describe("workers")
        settings = {
            "batch_size": str(batch),
            "wave_concurrency": str(waves_at_once),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **EXTRA_SETTINGS,
        }
        monitor = AvailabilityMonitor(env.sandbox.store).start()
        with LocalRunner(env, settings=settings) as runner:
            t0 = time.monotonic()
            result = runner.run(sc.bump_launch_template(), timeout=3 * 3600)
            wall = time.monotonic() - t0
            arn = result["executionArn"]
            executions = [arn, *runner.children(arn)]
            by_execution = {a: runner.own_history(a) for a in executions}
            histories = list(by_execution.values())
            # In real seconds, as duration_s (wall / factor): most of it is in-call waits, which
            # the factor scales (at 2 they took twice the wall clock that Lambda would bill).
            handler_s = sum(i.duration_s for i in runner.stats.invocations) / factor
            gb_s = handler_s * LAMBDA_MEMORY_MB / 1024
        monitor.stop()
        counts = count_roll([ev for h in histories for ev in h])
        largest = largest_state(by_execution)
        per = counts.per_node()
        state = AsgOps(env.aws("autoscaling"), env.aws("ec2")).describe("workers")
        old_left = sum(1 for i in state.instances if AsgOps.is_outdated(i, state))
        return {
            "nodes": nodes,
            "pods": len(deployments(nodes, pods_per_node)) * REPLICAS,
            "batch_size": batch,
            "wave_concurrency": waves_at_once,
            "status": result["status"],
            "error": result.get("error"),
            "cause": (result.get("cause") or "")[:600] or None,
            "leftovers": leftovers(env, "workers", before, desired=True),
            "replaced": counts.nodes,
            "old_instances_left": old_left,
            "duration_wall_s": round(wall, 1),
            "factor": factor,
            "duration_s": round(wall / factor, 1),  # real time: wall / the one time factor
            "lower_bound_s": lower_bound_s(nodes, pods_per_node),
            "executions": len(executions),
            "max_history_events": max(len(h) for h in histories),
            "events_per_node": per["history_events"],
            "lambda_invocations_per_node": per["lambda_invocations"],
            "state_transitions_per_node": per["state_transitions"],
            "max_state_bytes": largest[0],
            "max_state_at": largest[1],
            # In-process handler time (no cold starts) at the deployed memory size, real seconds.
            "lambda_gb_s_per_node": round(gb_s / max(counts.nodes, 1), 2),
            "cost_per_1000_nodes_usd": cost_per_1000_nodes(
                per["state_transitions"], per["lambda_invocations"], gb_s / max(counts.nodes, 1)
            ),
            "pdb_violations": monitor.violations,
            # No HTTP traffic in this scenario (thousands of pod servers would measure the
            # machine, not the roll); the field-report e2e tests carry traffic through rolls.
            "traffic_failed": None,
            # Real seconds per phase, summed over every batch (waves run one after another).
            "phases_s": {k: round(sum(phase_seconds(h)[k] for h in histories) / factor, 1) for k in PHASES},
            "setup_wall_s": round(setup_s, 1),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="30,300")
    ap.add_argument("--pods-per-node", type=int, default=15)
    ap.add_argument("--serial-nodes", type=int, default=30, help="0: no serial run")
    ap.add_argument(
        "--factor", type=float, default=0.5, help="the time factor of the sizes' rolls (realistic profile)"
    )
    ap.add_argument("--serial-factor", type=float, default=0.05, help="the time factor of the serial roll")
    ap.add_argument(
        "--size-factor",
        action="append",
        default=[],
        help="SIZE=F: this size's time factor instead (a size whose simulation cannot keep --factor)",
    )
    ap.add_argument("--batch", type=int, default=0, help="0: nodes / 10, within 2-50")
    ap.add_argument(
        "--wave-concurrency",
        type=int,
        default=40,
        help="waves at once (the tool's wave_concurrency; 1: in turn)",
    )
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE: a tool setting for every roll")
    args = ap.parse_args(argv)
    EXTRA_SETTINGS.update(kv.split("=", 1) for kv in args.set)
    sizes = [int(n) for n in args.sizes.split(",") if n]
    too_big = [n for n in sizes if 2 * n > MAX_NODE_INDEX]
    if too_big:
        ap.error(
            f"size(s) {too_big}: a roll launches one new instance per old one and the sandbox gives "
            f"every instance of a run one of {MAX_NODE_INDEX} node indices: at most "
            f"{MAX_NODE_INDEX // 2} nodes"
        )
    serial: dict[str, Any] | None = None
    if args.serial_nodes:
        serial = roll(args.serial_nodes, 1, args.pods_per_node, args.serial_factor, 1)
        print("serial:", json.dumps(serial), flush=True)
    rows = []
    factors = {int(k): float(v) for k, v in (kv.split("=", 1) for kv in args.size_factor)}
    for n in sizes:
        # Waves together: each wave one batch as large as a wave's history allows (50), all at once;
        # in turn: nodes / 10, as the rows before waves together were measured.
        batch = args.batch or (min(50, n) if args.wave_concurrency > 1 else min(50, max(2, n // 10)))
        factor = factors.get(n, args.factor)
        row = roll(n, batch, args.pods_per_node, factor, args.wave_concurrency)
        if serial and serial["status"] == "SUCCEEDED":
            row["serial_s"] = round(serial["duration_s"] * n / serial["nodes"], 1)
            row["serial_method"] = (
                "measured"
                if n == serial["nodes"]
                else f"extrapolated from a {serial['nodes']}-node serial run"
            )
            row["serial_over_duration"] = round(row["serial_s"] / row["duration_s"], 2)
        row["duration_over_lower_bound"] = round(row["duration_s"] / row["lower_bound_s"], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"serial": serial, "sizes": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0 if all(r["status"] == "SUCCEEDED" and not r["leftovers"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
