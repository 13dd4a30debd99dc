"""The `eks-rolling` command.

  demo     roll the field-report scenario on the local sandbox, end to end
  plan     print the dry-run plan of an ASG for a person (no write anywhere)
  start    start an execution of the deployed state machine ({"asgName":..., "dryRun":...})
  status   a roll's waves, nodes done / in flight / left, each in-flight node's step and the
           estimated time left (--wait: until it ends)
  report   a roll's timeline (PNG, one row per node) and per-node table (HTML), from its histories
  pause | resume | abort <roll>   control a running roll (an ASG name or its execution ARN):
           it acts before its next wave (what is in flight finishes first)

`plan` reads the same EKS_ROLLING_* settings as the Lambdas: real AWS by default, or a running
sandbox after `source <kubeconfig>.env` written by `eks-rolling-sandbox up`. `start` and `status`
take the state machine from EKS_ROLLING_STATE_MACHINE_ARN when it is not given (the env file of
a running sandbox sets it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from .models import Plan, PlanRollInput, ResolveTargetInput
from .settings import STATE_MACHINE_ARN_VARIABLE

# Each command imports what it needs inside its function: `--help` and `status` stay quick (no
# kubernetes client), and `demo` needs the optional sandbox extra, which the Lambda layer lacks.


def render_plan(plan: Plan, cluster: str) -> str:
    lines = [
        f"Plan for ASG {plan.asg_name} (cluster {cluster}) -> launch template version {plan.target_version}"
    ]
    if not plan.has_work:
        if plan.out_of_scope:
            lines.append(f"  {plan.out_of_scope} outdated instance(s), none in scope: nothing to do.")
            lines += _scope_lines(plan)
        else:
            lines.append("  Every instance is up to date: nothing to do.")
        return "\n".join(lines)
    s = plan.surge
    raise_max = f", MaxSize raised to {s.raise_max_to} during the roll" if s.raise_max_to else ""
    lines.append(
        f"  {plan.outdated} outdated instance(s) in {len(plan.batches)} batch(es); desired {s.desired_before} -> {s.peak_desired} at peak (MaxSize {s.max_before}{raise_max})"
    )
    for i, batch in enumerate(plan.batches, 1):
        nodes = ", ".join(
            f"{n.instance_id} {n.node_name or '(no node)'} {n.az} {n.pods} pod(s)" for n in batch
        )
        lines.append(f"  batch {i}: {nodes}")
    lines += _canary_lines(plan)
    if plan.az_sequential:
        lines.append("  per-AZ sequencing: one availability zone finishes before the next starts")
    if plan.maintenance_windows:
        lines.append(
            f"  maintenance windows ({plan.maintenance_windows_from}): {plan.maintenance_windows};"
            " a wave starts only inside one"
        )
    lines += _scope_lines(plan)
    lines += _hook_lines(plan)
    if plan.held:
        lines.append(f"  do-not-disrupt pods (never evicted; their node waits): {len(plan.held)}")
        lines += [
            f"    - {h.ref} on {h.node}: until it finishes or {h.deadline}, then {h.on_deadline}"
            for h in plan.held
        ]
    blockers = [f for f in plan.findings if f.severity == "blocker"]
    warnings = [f for f in plan.findings if f.severity == "warning"]
    lines.append(f"  blockers: {len(blockers) or 'none'}")
    lines += [f"    - [{f.kind}] {f.message}" for f in blockers]
    if warnings:
        lines.append(f"  warnings: {len(warnings)}")
        lines += [f"    - [{f.kind}] {f.message}" for f in warnings]
    lines.append(f"  history budget: about {plan.estimated_history_events} of 25,000 events")
    lines.append("  BLOCKED: the roll would stop before any change." if plan.blocked else "  Ready to roll.")
    return "\n".join(lines)


def _canary_lines(plan: Plan) -> list[str]:
    if not plan.health_alarms:
        return []
    lines = []
    canary = [w for w in plan.waves if w.canary]
    if canary:
        nodes = [n for w in canary for b in w.batches for n in b]
        lines.append(
            f"  canary wave ({plan.canary_per_az} per zone; only its nodes are tainted until it baked): "
            + ", ".join(f"{n.instance_id} {n.node_name or '(no node)'} {n.az}" for n in nodes)
        )
    revert = (
        f"; on ALARM the ASG points back at version {plan.previous_version} and the canary is reverted"
        if plan.revert_on_alarm
        else ""
    )
    lines.append(
        f"  health gate ({plan.health_alarms_from}): {', '.join(plan.health_alarms)} must stay OK for "
        f"{plan.health_bake_s} s after each of {len(plan.waves)} wave(s){revert}"
    )
    return lines


def _hook_lines(plan: Plan) -> list[str]:
    h = plan.hooks
    lines = []
    if h.pre_drain:
        lines.append(
            f"  pre-drain hooks ({h.pre_drain_from}), per node before any eviction; a failure stops the roll:"
        )
        lines += [f"    - {t}" for t in h.pre_drain]
    if h.post_replace:
        lines.append(f"  post-replace hooks ({h.post_replace_from}), per node once it is replaced:")
        lines += [f"    - {t}" for t in h.post_replace]
    return lines


def _scope_lines(plan: Plan) -> list[str]:
    if not plan.out_of_scope:
        return []
    lines = [f"  out of scope (left on the old template): {plan.out_of_scope}"]
    lines += [f"    - {e.instance_id} {e.node_name or '(no node)'} {e.az}: {e.reason}" for e in plan.excluded]
    if plan.out_of_scope > len(plan.excluded):
        lines.append(f"    - ... and {plan.out_of_scope - len(plan.excluded)} more")
    return lines


def _plan(args: argparse.Namespace) -> int:
    from .services.deps import Deps
    from .services.resolve import resolve_target
    from .services.roll import plan_roll

    deps = Deps.from_env()
    resolved = resolve_target(
        ResolveTargetInput(
            event={"asgName": args.asg, "dryRun": True, **_scope_input(args)},
            execution_id=f"cli-plan-{uuid.uuid4().hex[:8]}",
        ),
        deps,
    )
    code = 0
    for ctx in resolved.targets:
        plan = plan_roll(PlanRollInput(ctx=ctx), deps)
        print(plan.model_dump_json(indent=2) if args.json else render_plan(plan, ctx.cluster_name))
        code = max(code, 2 if plan.blocked else 0)
    return code


def _start(args: argparse.Namespace) -> int:
    from .aws.clients import aws_client
    from .settings import Settings

    machine = _state_machine(args)
    sfn = aws_client("stepfunctions", Settings())
    payload = {"asgName": args.asg, "dryRun": args.dry_run, **_scope_input(args)}
    out = sfn.start_execution(
        stateMachineArn=machine,
        name=args.name or f"manual-{args.asg}-{uuid.uuid4().hex[:8]}"[:80],
        input=json.dumps(payload),
    )
    print(out["executionArn"])
    return 0


def _scope_input(args: argparse.Namespace) -> dict[str, object]:
    """The start input's scope fields (aws.events.ManualRequest), only those given."""
    out: dict[str, object] = {}
    if args.node_selector:
        out["nodeSelector"] = args.node_selector
    if args.instance_ids:
        out["instanceIds"] = [i for i in args.instance_ids.replace(",", " ").split() if i]
    if args.exclude_selector:
        out["excludeSelector"] = args.exclude_selector
    return out


def _scope_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node-selector", help="roll only old nodes matching this label selector")
    p.add_argument("--instance-ids", help="roll only these old instances (comma-separated)")
    p.add_argument("--exclude-selector", help="never roll old nodes matching this label selector")


FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _state_machine(args: argparse.Namespace) -> str:
    arn: str | None = args.state_machine_arn or os.environ.get(STATE_MACHINE_ARN_VARIABLE)
    if not arn:
        raise SystemExit(
            f"eks-rolling {args.command}: give --state-machine-arn or set {STATE_MACHINE_ARN_VARIABLE}"
        )
    return arn


def _status(args: argparse.Namespace) -> int:
    from .aws.clients import aws_client
    from .settings import Settings

    sfn = aws_client("stepfunctions", Settings())
    arn = args.execution_arn
    if not arn:  # the newest execution of the state machine
        runs = sfn.list_executions(stateMachineArn=_state_machine(args), maxResults=100)["executions"]
        if not runs:
            print("no execution yet")
            return 1
        arn = max(runs, key=lambda r: r["startDate"])["executionArn"]
        print(arn)
    deadline = time.monotonic() + args.timeout
    shown: tuple[object, ...] | None = None
    while True:
        report, status, key = _status_report(sfn, arn)
        if key != shown:  # a line when something changed, not one per poll
            print(report, flush=True)
            shown = key
        if not args.wait or status in FINAL:
            break
        if time.monotonic() > deadline:
            print(f"still {status} after {args.timeout:.0f}s", flush=True)
            return 1
        time.sleep(args.interval)
    return 0 if status in ("SUCCEEDED", "RUNNING") else 1


def _status_report(sfn: Any, arn: str) -> tuple[str, str, tuple[object, ...]]:
    """The roll's progress from its parent's and waves' histories: (text, status, what changed)."""
    from datetime import UTC, datetime

    from .aws.histories import read_timeline
    from .timeline import render_status

    now = datetime.now(UTC)
    d = sfn.describe_execution(executionArn=arn)
    t = read_timeline(sfn, arn, now=now if d["status"] == "RUNNING" else None)
    text = render_status(t, now=now)
    if d.get("error"):
        text += f"\n  error {d.get('error')}: {d.get('cause', '')[:400]}"
    key = (t.status, t.step, len(t.done), tuple((r.instance_id, r.current) for r in t.in_flight))
    return text, t.status, key


def _report(args: argparse.Namespace) -> int:
    from .aws.clients import aws_client
    from .aws.histories import read_timeline
    from .report import write_report
    from .settings import Settings

    sfn = aws_client("stepfunctions", Settings())
    t = read_timeline(sfn, args.execution_arn)
    png, page = write_report(t, Path(args.out))
    print(f"{png}\n{page}")
    return 0


def _control(args: argparse.Namespace) -> int:
    """pause / resume / abort: stored on the roll's lock item, acted on by CheckGate."""
    import getpass

    from .errors import EksRollingError
    from .services.deps import Deps
    from .services.gate import set_control

    deps = Deps.from_env()
    roll: str = args.roll
    asgs = deps.lock.keys_held_by(roll) if roll.startswith("arn:") else [roll]
    if not asgs:
        print(f"eks-rolling {args.command}: {roll} holds no lock (not running?)", file=sys.stderr)
        return 1
    by = args.by or f"{getpass.getuser()} (eks-rolling {args.command})"
    for asg in asgs:
        try:
            execution = set_control(asg, args.command, by, deps)
        except EksRollingError as exc:
            print(f"eks-rolling {args.command}: {exc}", file=sys.stderr)
            return 1
        print(f"{args.command} asked for the roll of {asg} ({execution}); it acts before the next wave")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from eks_rolling_sandbox.demo.run import run_demo

    timing = {"timing_profile": args.timing_profile, "time_factor": args.time_factor}
    report = run_demo(
        out_dir=Path(args.out),
        scenario_name=args.scenario,
        redis=not args.no_redis,
        **{k: v for k, v in timing.items() if v is not None},
    )
    # Any report field that shows a failure (run_demo lists them in report["failures"] and the
    # summary prints them) makes the exit code non-zero.
    return 1 if report["failures"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eks-rolling", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="roll the field-report scenario on the local sandbox")
    demo.add_argument("--out", default="build", help="where the report and history go")
    demo.add_argument(
        "--scenario",
        choices=("field-report", "bad-ami"),
        default="field-report",
        help="field-report (the default), or bad-ami: the new AMI breaks the shop, its alarm halts the "
        "roll after the canary wave and the canary is reverted (exit 0 when that happens)",
    )
    demo.add_argument(
        "--no-redis", action="store_true", help="leave the Redis groups (real redis-server processes) out"
    )
    demo.add_argument(
        "--timing-profile",
        choices=("realistic", "fast"),
        help="real-world durations (EC2 boot, probes, grace periods; the default) or the tests' fast ones",
    )
    demo.add_argument(
        "--time-factor",
        type=float,
        help="fraction of real time the sandbox, the Waits and the steps' clock run at (default 0.05)",
    )
    demo.set_defaults(fn=_demo)
    plan = sub.add_parser("plan", help="print the dry-run plan of an ASG (exit 2 when blocked)")
    plan.add_argument("--asg", required=True)
    plan.add_argument("--json", action="store_true")
    _scope_arguments(plan)
    plan.set_defaults(fn=_plan)
    start = sub.add_parser("start", help="start an execution of the deployed state machine")
    start.add_argument("--asg", required=True)
    start.add_argument("--state-machine-arn", help=f"default: ${STATE_MACHINE_ARN_VARIABLE}")
    start.add_argument("--dry-run", action="store_true")
    start.add_argument("--name")
    _scope_arguments(start)
    start.set_defaults(fn=_start)
    status = sub.add_parser("status", help="a roll's waves, nodes done / in flight / left and time left")
    status.add_argument("execution_arn", nargs="?", help="default: the newest execution of the state machine")
    status.add_argument("--state-machine-arn", help=f"default: ${STATE_MACHINE_ARN_VARIABLE}")
    status.add_argument(
        "--wait", action="store_true", help="follow the execution until it ends (exit 1 unless SUCCEEDED)"
    )
    status.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --wait")
    status.add_argument(
        "--timeout", type=float, default=3600.0, help="give up waiting after this many seconds"
    )
    status.set_defaults(fn=_status)
    report = sub.add_parser(
        "report", help="a roll's timeline (PNG) and per-node table (HTML) from its execution histories"
    )
    report.add_argument("execution_arn", help="the roll (parent) execution")
    report.add_argument("--out", default="build", help="where timeline.png and report.html go")
    report.set_defaults(fn=_report)
    for name, what in (
        ("pause", "pause a running roll before its next wave (bounded by pause_timeout_s)"),
        ("resume", "resume a paused roll where it stopped"),
        ("abort", "stop a running roll before its next wave and roll it back (RollAbortedError)"),
    ):
        control = sub.add_parser(name, help=what)
        control.add_argument("roll", help="the ASG name, or the roll's execution ARN")
        control.add_argument("--by", help="who asks, recorded in the history (default: the local user)")
        control.set_defaults(fn=_control)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    rc: int = args.fn(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
