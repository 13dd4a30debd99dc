"""`eks-rolling demo`: the main job on the local sandbox, end to end, with live progress and a
report in build/demo-report.json (the full execution history beside it is the audit trail).

No upstream counterpart: what a person runs first.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from eks_rolling.aws.asg import AsgOps
from eks_rolling.metrics import Metric, summarize
from eks_rolling.report import write_report
from eks_rolling.timeline import node_table

from ..env import SandboxEnv
from ..roll_counts import count_roll
from ..runner import LocalRunner
from ..scenarios import BAD_AMI, BAD_AMI_ALARM, BadAmiAlarm, Scenario, bad_ami, field_report
from ..traffic.availability import AvailabilityMonitor
from .redis_load import RedisLoad, summary_lines
from .web_load import WebLoad, traffic_failures

log = logging.getLogger(__name__)

DEMO_SETTINGS = {
    "batch_size": "2",
    "delete_emptydir_data": "false",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
# The demo runs the realistic timing profile (timing.py: real EC2 boot, probes, preStop and grace
# periods) with the tool's default polling and deadlines, everything scaled by one time factor,
# so its polling rounds and history events are a real roll's. Reported with every run.
DEMO_TIMING_PROFILE = "realistic"
DEMO_TIME_FACTOR = 0.05
SCENARIOS = ("field-report", "bad-ami")
# bad-ami: the shop's alarm is the health gate, and a firing alarm reverts the canary. The bake
# is the default (300 s, scaled with the Waits like everything else).
BAD_AMI_SETTINGS = {"health_alarms": BAD_AMI_ALARM, "revert_on_alarm": "true"}
# The metrics every clean roll writes (EvictionErrors only when an eviction fails), and those a
# roll with Redis pods adds.
ROLL_METRICS = (
    Metric.NODES_REPLACED,
    Metric.NODE_REPLACEMENT_DURATION,
    Metric.DRAIN_DURATION,
    Metric.OWNERS_RECOVERY_TIME,
)
REDIS_METRICS = (Metric.REDIS_WRITE_PAUSE, Metric.REDIS_FAILOVER_TIME, Metric.TEMP_CLUSTER_NODES)
# EC2 states of an instance the roll terminated (AWS forgets terminated instances after ~1 h).
_GONE = {"shutting-down", "terminated"}

NODE_STATES = {
    "DrainNode",
    "WaitOwnersReady",
    "ExcludeFromLoadBalancers",
    "TerminateInstance",
    "NodeReplaced",
    "BackOffBeforeDrain",
    "PauseBeforeOwnersCheck",
    "DeregistrationDelay",
    "MoveRedisPods",
    "PauseBeforeRedisCheck",
    "PreDrainHooks",
    "PostReplaceHooks",
}


@dataclass
class Progress:
    """What the operator sees: nodes old/new, the current step of each old node, evictions."""

    node_step: dict[str, str] = field(default_factory=dict)
    phase: str = "starting"
    seen_events: int = 0

    def update(self, history: list[dict[str, Any]]) -> None:
        for ev in history[self.seen_events :]:
            details = ev.get("stateEnteredEventDetails")
            if not details:
                continue
            name = details["name"]
            try:
                inp = json.loads(details.get("input") or "{}")
            except ValueError:
                inp = {}
            node = (inp.get("node") or {}).get("node_name") if isinstance(inp, dict) else None
            if name in NODE_STATES and node:
                self.node_step[node] = "replaced" if name == "NodeReplaced" else name + _redis_phase(inp)
            elif name not in (
                "NodeDrained",
                "OwnersRecovered",
                "NewNodesReady",
                "RedisMoved",
                "PostReplaceHooksConfigured",
            ):
                self.phase = name
        self.seen_events = len(history)


def _redis_phase(inp: dict[str, Any]) -> str:
    """` redis-master-0:switchover` while a node's Redis pods are being moved."""
    moves = ((inp.get("redis") or {}) if isinstance(inp.get("redis"), dict) else {}).get("moves") or []
    current = next((m for m in moves if isinstance(m, dict) and not m.get("done")), None)
    return f" {current.get('pod')}:{current.get('phase')}" if current else ""


def _line(elapsed: float, old: int, new: int, progress: Progress, evictions: Counter[int]) -> str:
    active = ", ".join(
        f"{n.split('.')[0]}: {s}" for n, s in sorted(progress.node_step.items()) if s != "replaced"
    )
    return f"[{elapsed:6.1f}s] old {old} new {new} | {progress.phase:<24} | evictions {evictions.get(201, 0)} (refused {evictions.get(429, 0)}) | {active or '-'}"


def _node_counts(asg: AsgOps, name: str) -> tuple[int, int]:
    state = asg.describe(name)
    old = sum(
        1
        for i in state.instances
        if AsgOps.is_outdated(i, state) and not i.lifecycle_state.startswith("Terminat")
    )
    return old, len(state.instances) - old


def terminated_instances(ec2: Any, instance_ids: list[str]) -> list[str]:
    """Which of `instance_ids` EC2 reports terminated (or shutting down, or no longer knows)."""
    if not instance_ids:
        return []
    known = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
        for i in r["Instances"]
    }
    return [iid for iid in instance_ids if known.get(iid, "terminated") in _GONE]


def report_failures(report: dict[str, Any]) -> list[str]:
    """Every field of a demo report that shows a failure, as `field: value` (empty: all good).
    `eks-rolling demo` exits non-zero when there is any."""
    out: list[str] = []

    def check(ok: bool, name: str, value: Any) -> None:
        if not ok:
            out.append(f"{name}: {value}")

    ex = report["execution"]
    if report.get("scenario") == "bad-ami":
        # The expected outcome: the alarm halted the roll after the canary, which was reverted.
        check(report["halted_by_alarm"] is True, "halted_by_alarm", f"{ex['status']} {ex['error']}")
        check(report["reverted"] is True, "reverted", report["revert"])
        b = report["bad_ami"]
        check(b["bad_ami_nodes_left"] == 0, "bad_ami.bad_ami_nodes_left", b["bad_ami_nodes_left"])
        check(
            b["other_old_nodes_touched"] == [],
            "bad_ami.other_old_nodes_touched",
            b["other_old_nodes_touched"],
        )
        left = report["old_instances_before"] - b["canary_nodes"]
        check(
            b["old_nodes_left"] == left, "bad_ami.old_nodes_left", f"{b['old_nodes_left']} (expected {left})"
        )
    else:
        check(ex["status"] == "SUCCEEDED", "execution.status", ex["status"])
        check(report["old_instances_left"] == 0, "old_instances_left", report["old_instances_left"])
        check(
            report["nodes_replaced"] == report["old_instances_before"],
            "nodes_replaced",
            f"{report['nodes_replaced']} of {report['old_instances_before']}",
        )
    check(report["pdb_violations"] == 0, "pdb_violations", report["pdb_violations"])
    avail = report["availability"]
    check(avail["errors"] == 0, "availability.errors", f"{avail['errors']} {avail['error_samples']}")
    restored = report["restored"]
    for key in ("cluster_autoscaler_replicas", "asg_desired", "asg_max"):
        check(restored[key] is True, f"restored.{key}", restored[key])
    for proc, ok in restored["processes"].items():
        check(ok is True, f"restored.processes.{proc}", ok)
    redis = report.get("redis")
    if redis is not None:
        s, c = redis["sentinel"], redis["cluster"]
        check(s["acked_writes_lost"] == 0, "redis.sentinel.acked_writes_lost", s["acked_writes_lost"])
        check(
            s["write_errors"] == 0,
            "redis.sentinel.write_errors",
            f"{s['write_errors']} {s.get('write_error_types')} past the client's retry window "
            f"({s.get('write_retries')} retried: {s.get('write_retry_types')})",
        )
        check(not s["stale_replicas"], "redis.sentinel.stale_replicas", s["stale_replicas"])
        check(s["quorum_ok"] is True, "redis.sentinel.quorum_ok", s["quorum_ok"])
        check(s["master_pod"] is not None, "redis.sentinel.master_pod", s["master_pod"])
        check(c["acked_writes_lost"] == 0, "redis.cluster.acked_writes_lost", c["acked_writes_lost"])
        check(
            c["write_errors"] == 0,
            "redis.cluster.write_errors",
            f"{c['write_errors']} {c.get('write_error_types')}",
        )
        check(c["uncovered_slots_max"] == 0, "redis.cluster.uncovered_slots_max", c["uncovered_slots_max"])
        check(c["leftover_temp_nodes"] == 0, "redis.cluster.leftover_temp_nodes", c["leftover_temp_nodes"])
        check(c["node_ids_kept"] is True, "redis.cluster.node_ids_kept", c["node_ids_kept"])
        check(c["masters_in_place"] is True, "redis.cluster.masters_in_place", c["masters_in_place"])
    metrics = report.get("metrics")
    if metrics is not None:  # the roll's own metrics (EMF): every one a clean roll writes
        wanted = set(ROLL_METRICS) | (set(REDIS_METRICS) if redis is not None else set())
        missing = sorted(m.value for m in wanted if m.value not in metrics)
        check(not missing, "metrics.missing", missing)
    traffic = report.get("traffic")
    if traffic is not None:
        for ok, name, value in traffic_failures(traffic):
            check(ok, name, value)
    return out


def run_demo(
    *,
    out_dir: Path = Path("build"),
    scenario_name: str = "field-report",
    redis: bool = True,
    stream: TextIO | None = None,
    timeout_s: float = 360.0,
    settings: dict[str, str] | None = None,
    timing_profile: str = DEMO_TIMING_PROFILE,
    time_factor: float = DEMO_TIME_FACTOR,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def say(msg: str) -> None:
        # sys.stdout read at call time: a default bound at import would miss a later redirection
        print(msg, file=stream or sys.stdout, flush=True)

    bad = scenario_name == "bad-ami"
    redis = redis and not bad  # bad-ami is about the canary: no Redis, to keep it quick
    if bad:
        settings = {**BAD_AMI_SETTINGS, **(settings or {})}
    with SandboxEnv(redis=redis, timing_profile=timing_profile, time_factor=time_factor) as env:
        web = WebLoad(env)  # its HTTP runtime serves the scenario's LoadBalancer pods
        say(
            "eks-rolling demo: starting the local sandbox (Kubernetes API, moto, cloud bridge"
            + (", Redis pods as redis-server processes)" if redis else ")")
        )
        scenario: Scenario = bad_ami(env, redis=False) if bad else field_report(env, redis=redis)
        alarm = BadAmiAlarm(env).start() if bad else None
        say(
            f"  {scenario_name} scenario up in {time.monotonic() - t0:.1f}s: {len(env.sandbox.store.all('nodes'))} nodes, {len(env.sandbox.pods())} pods; kubeconfig: {env.kubeconfig(out_dir / 'kubeconfig')}"
        )
        load = RedisLoad(env, scenario, max_seconds=timeout_s + 60).start(say) if redis else None
        try:
            web.start(say)
            report = _roll(env, scenario, out_dir, say, timeout_s, settings, scenario_name)
            if alarm is not None:
                report["alarm"] = {"name": alarm.alarm, "changes": alarm.changes}
            traffic = web.finish_roll()
            if load is not None:
                report["redis"] = load.finish(say)
            traffic["baseline"] = web.baseline(say)
            report["traffic"] = traffic
        finally:
            if load is not None:
                load.stop()
            if alarm is not None:
                alarm.stop()
            web.stop()
        report["failures"] = report_failures(report)
        (out_dir / "demo-report.json").write_text(json.dumps(report, indent=2, default=str))
        _summary(report, out_dir, say)
    return report


def _roll(
    env: SandboxEnv,
    scenario: Scenario,
    out_dir: Path,
    say: Callable[[str], None],
    timeout_s: float,
    settings: dict[str, str] | None,
    scenario_name: str = "field-report",
) -> dict[str, Any]:
    asg = AsgOps(env.aws("autoscaling"), env.aws("ec2"))
    before = asg.describe(scenario.asg_name)
    ca_before = env.sandbox.store.require("deployments", *scenario.autoscaler)["spec"]["replicas"]
    monitor = AvailabilityMonitor(env.sandbox.store).start()
    with LocalRunner(env, settings={**DEMO_SETTINGS, **(settings or {})}) as runner:
        event = scenario.bump_launch_template(image_id=scenario.new_ami)
        say(
            f"  operator: new launch template version {event['detail']['requestParameters']['launchTemplate']['version']} for ASG {scenario.asg_name} -> CloudTrail UpdateAutoScalingGroup -> state machine"
        )
        mark = env.sandbox.request_log.mark()
        arn = runner.start(event, name=f"demo-{int(time.time())}")
        progress = Progress()
        last = ""
        t_roll = time.monotonic()

        def poll(_: dict[str, Any]) -> None:
            nonlocal last
            progress.update(runner.history(arn))
            evictions = Counter(
                e.status for e in env.sandbox.request_log.entries(mark) if e.path.endswith("/eviction")
            )
            old, new = _node_counts(asg, scenario.asg_name)
            line = _line(time.monotonic() - t_roll, old, new, progress, evictions)
            if line.split("|", 1)[1] != last.split("|", 1)[-1]:
                say(line)
                last = line

        result = runner.wait(arn, timeout=timeout_s, poll=0.5, on_poll=poll)
        duration = time.monotonic() - t_roll
        history = runner.history(arn)
        timeline = runner.timeline(arn)
    monitor.stop()
    time_factor = runner.time_scale
    after = asg.describe(scenario.asg_name)
    ca_after = env.sandbox.store.require("deployments", *scenario.autoscaler)["spec"]["replicas"]
    old_left = [i.instance_id for i in after.instances if AsgOps.is_outdated(i, after)]
    history_path = out_dir / "demo-history.json"
    history_path.write_text(json.dumps(history, indent=1, default=str))
    note = f"; sandbox time, {time_factor} x real time" if time_factor != 1 else ""
    png, page = write_report(timeline, out_dir, prefix="demo-", note=note)
    old_ids = [i.instance_id for i in before.instances]  # taken before the launch template bump
    report: dict[str, Any] = {
        "scenario": scenario_name,
        "timing": {
            "profile": env.timing_profile.name,
            # the sandbox's durations, the state machine's Waits and (realistic) the steps' clock
            # run at this fraction of real time
            "time_factor": time_factor,
            "sandbox_timings_s": asdict(env.sandbox.timings),
        },
        "old_instances_before": len(old_ids),
        "nodes_replaced": len(terminated_instances(env.aws("ec2"), old_ids)),
        "old_instances_left": len(old_left),
        "duration_s": round(duration, 1),
        "pdb_violations": monitor.violations,
        "min_ready": monitor.report(),
        "availability": {"errors": monitor.errors, "error_samples": monitor.error_samples},
        "restored": {
            "cluster_autoscaler_replicas": ca_after == ca_before,
            "asg_desired": after.desired == before.desired,
            "asg_max": after.max_size == before.max_size,
            "processes": {
                p: p not in after.suspended_processes
                for p in ("AZRebalance", "AlarmNotification", "ScheduledActions")
            },
            "values": {
                "cluster_autoscaler": [ca_before, ca_after],
                "desired": [before.desired, after.desired],
                "max": [before.max_size, after.max_size],
            },
        },
        "execution": {
            "arn": arn,
            "status": result["status"],
            "error": result.get("error"),
            "history_events": len(history),
            "history_path": str(history_path),
            # polling rounds, Lambda invocations and history events, in all and per replaced node
            "counts": count_roll(history).report(),
        },
        "evictions": dict(
            Counter(
                str(e.status) for e in env.sandbox.request_log.entries(mark) if e.path.endswith("/eviction")
            )
        ),
        "lambda_invocations": len(runner.stats.invocations),
        # the roll's own metrics, from the EMF documents its steps wrote (eks_rolling.metrics)
        "metrics": summarize(runner.stats.emf),
        # eks-rolling report's picture and page for this roll, and the data behind them
        "timeline": {"png": str(png), "html": str(page), "nodes": node_table(timeline)},
        "setup_s": scenario.extras.get("setup_s"),
    }
    if scenario_name == "bad-ami":
        report.update(_bad_ami_report(env, before, after, history, result))
    return report


def _outputs(history: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == state
    ]


def _node_steps(history: list[dict[str, Any]], step: str) -> set[str]:
    out: set[str] = set()
    for e in history:
        d = e.get("stateEnteredEventDetails")
        if d and d["name"] == step:
            node = json.loads(d.get("input") or "{}").get("node") or {}
            if node.get("instance_id"):
                out.add(str(node["instance_id"]))
    return out


def _bad_ami_report(
    env: SandboxEnv, before: Any, after: Any, history: list[dict[str, Any]], result: dict[str, Any]
) -> dict[str, Any]:
    """halted_by_alarm, reverted and what was left: measured on the ASG, EC2 and the histories."""
    plans = [o["plan"] for o in _outputs(history, "PlanRoll")]
    waves = plans[0]["waves"] if plans else []
    canary = {n["instance_id"] for w in waves if w.get("canary") for b in w["batches"] for n in b}
    old = {i.instance_id for i in before.instances}
    live = [i.instance_id for i in after.instances if not i.lifecycle_state.startswith("Terminat")]
    images = {
        i["InstanceId"]: i["ImageId"]
        for r in (env.aws("ec2").describe_instances(InstanceIds=live)["Reservations"] if live else [])
        for i in r["Instances"]
    }
    revert = next((o["revert"] for o in _outputs(history, "RevertTarget")), None)
    touched = set().union(*(_node_steps(history, s) for s in ("DrainNode", "TerminateInstance")))
    return {
        "halted_by_alarm": result["status"] == "FAILED" and result.get("error") == "HealthAlarmError",
        "reverted": bool(revert and revert["reverted"])
        and after.target_version == before.target_version
        and BAD_AMI not in images.values(),
        "revert": revert,
        "bad_ami": {
            "canary_nodes": len(canary),
            "canary_zones": sorted({i.az for i in before.instances if i.instance_id in canary}),
            # the group's original (old-template) instances still in service: all but the canary
            "old_nodes_left": len(old & set(live)),
            "bad_ami_nodes_left": sum(1 for v in images.values() if v == BAD_AMI),
            "other_old_nodes_touched": sorted((old - canary) & touched),
            # before the roll, what it rolled to, and after the revert
            "launch_template_version": [
                before.target_version,
                revert["rolled_version"] if revert else None,
                after.target_version,
            ],
            "cause": (result.get("cause") or "")[:300],
        },
    }


def _kinds(counts: dict[str, Any]) -> str:
    kinds = {k: v for k, v in counts["failed_by_kind"].items() if v}
    return f"({', '.join(f'{k} {v}' for k, v in kinds.items())})" if kinds else ""


def _summary(report: dict[str, Any], out_dir: Path, say: Callable[[str], None]) -> None:
    ex = report["execution"]
    say("")
    t = report["timing"]
    # Only the realistic profile's durations are real ones: only then is the roll's real length known.
    real = (
        f": {report['duration_s'] / t['time_factor'] / 60:.0f} min of real time"
        if t["profile"] != "fast"
        else ""
    )
    say(
        f"execution {ex['status']} in {report['duration_s']:.1f}s ({t['profile']} timings, time factor {t['time_factor']}{real}): {report['nodes_replaced']} of {report['old_instances_before']} old instances replaced, {report['old_instances_left']} left, {report['pdb_violations']} PDB violations"
    )
    per = ex["counts"]["per_node"]
    say(
        f"  per replaced node: {per['polling_rounds']} polling rounds, {per['lambda_invocations']} Lambda invocations, {per['history_events']} history events"
    )
    for d in report["min_ready"]:
        say(
            f"  {d['kind'] + ' ' + d['workload']:<44} min ready {d['min_ready']}/{d['replicas']} (PDB guarantees {d['pdb_min_available']})"
        )
    r = report["restored"]
    say(
        f"  restored: cluster-autoscaler {r['cluster_autoscaler_replicas']}, desired {r['asg_desired']}, max {r['asg_max']}, processes {all(r['processes'].values())}"
    )
    if "redis" in report:
        for line in summary_lines(report["redis"]):
            say(line)
    if "traffic" in report:
        tr, base = report["traffic"], report["traffic"]["baseline"]
        say(
            f"  traffic through the load balancer: {tr['requests']} requests during the roll, {tr['failed']} failed {_kinds(tr)}, max latency {tr['max_latency_ms']:.0f} ms"
        )
        say(
            f"  baseline (drain + terminate without exclusion or deregistration wait): {base['requests']} requests, {base['failed']} failed {_kinds(base)}, max latency {base['max_latency_ms']:.0f} ms"
        )
        for sample in tr.get("failure_samples") or []:  # the roll's own failed requests, stamped
            say(f"    failed request at {sample}")
        if tr.get("failed"):
            lag = tr.get("loop_lag") or {}
            say(
                f"    traffic loop: max lag {lag.get('max_ms')} ms; stalls over 100 ms at {lag.get('stall_samples')}"
            )
    if report.get("scenario") == "bad-ami":
        b = report["bad_ami"]
        say(
            f"  bad-ami: halted_by_alarm {report['halted_by_alarm']}, reverted {report['reverted']} (launch template version "
            f"{' -> '.join(map(str, b['launch_template_version']))}); canary {b['canary_nodes']} node(s) in {', '.join(b['canary_zones'])}; "
            f"old nodes left {b['old_nodes_left']} of {report['old_instances_before']}, other old nodes touched {len(b['other_old_nodes_touched'])}, "
            f"bad-AMI nodes left {b['bad_ami_nodes_left']}"
        )
        for t, state, reason in (report.get("alarm") or {}).get("changes", []):
            say(
                f"    alarm {report['alarm']['name']} -> {state} at {time.strftime('%H:%M:%S', time.gmtime(t))}: {reason}"
            )
    for failure in report.get("failures") or []:
        say(f"  FAILED {failure}")
    say(f"  timeline: {report['timeline']['png']}, {report['timeline']['html']}")
    say(
        f"  report: {out_dir / 'demo-report.json'}; audit trail ({ex['history_events']} events): {ex['history_path']}"
    )
