"""`eks-rolling-sandbox up --kubeconfig PATH [--scenario NAME]`: run a sandbox in the foreground.

The sandbox is a whole local account and cluster: the Kubernetes API, AWS (moto) with the
state machine deployed (the real ASL, its Lambdas run in this process) and the trigger rules of
the CDK app on the default event bus, fed by CloudTrail records of the calls sent to it. So an
`aws ec2 create-launch-template-version` or `aws autoscaling update-auto-scaling-group` sent to
its AWS endpoint starts a roll, as on AWS.

It writes a kubeconfig for kubectl and an env file that points eks-rolling, the AWS CLI and boto3
at the sandbox (`source` it, then e.g. `eks-rolling plan --asg eks-workers`). Ctrl-C (or
SIGTERM) stops everything, Redis processes included.

Upstream: none; plays the role of `eksctl create cluster` for a local cluster.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from eks_rolling.settings import STATE_MACHINE_ARN_VARIABLE

from .env import SandboxEnv
from .runner import LocalRunner
from .scenarios import SCENARIOS

# kube-apiserver's --min-request-timeout default: a watch lasts 30-60 min there, so
# `kubectl get nodes -w` (which ends with its watch) follows a whole roll.
WATCH_MAX_S = 1800.0


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eks-rolling-sandbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a sandbox and keep it running")
    up.add_argument("--kubeconfig", required=True, type=Path, help="where to write the kubeconfig")
    up.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default=None,
        help="build a scenario (default: an empty cluster)",
    )
    up.add_argument("--no-redis", action="store_true", help="leave the Redis groups out of the scenario")
    up.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="where to write EKS_ROLLING_* settings (default: next to the kubeconfig)",
    )
    up.add_argument("--cluster-name", default="sandbox")
    up.add_argument(
        "--no-state-machine",
        action="store_true",
        help="deploy neither the state machine nor the trigger (plan only)",
    )
    up.add_argument(
        "--time-scale",
        type=float,
        default=0.05,
        help="factor on the state machine's Wait states and retry back-offs (default 0.05)",
    )
    up.add_argument(
        "--setting",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an eks-rolling setting for the deployed Lambdas, e.g. batch_size=2 (repeatable)",
    )
    up.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    env = SandboxEnv(
        cluster_name=args.cluster_name,
        redis=args.scenario is not None and not args.no_redis,
        watch_max_s=WATCH_MAX_S,
    )
    runner: LocalRunner | None = None
    try:
        env.start()
        if args.scenario:
            SCENARIOS[args.scenario](env, redis=not args.no_redis)
        kubeconfig = env.kubeconfig(args.kubeconfig)
        env_file = args.env_file or kubeconfig.with_name(kubeconfig.name + ".env")
        settings = env.tool_env()
        # The AWS CLI and boto3 read AWS_ENDPOINT_URL: `aws ec2 ...` then goes to the sandbox.
        settings["AWS_ENDPOINT_URL"] = env.moto.endpoint_url
        if not args.no_state_machine:
            runner = LocalRunner(env, time_scale=args.time_scale, settings=dict(args.setting), trigger=True)
            runner.__enter__()
            assert runner.state_machine_arn
            settings[STATE_MACHINE_ARN_VARIABLE] = runner.state_machine_arn
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in sorted(settings.items())))
        nodes, pods = len(env.sandbox.store.all("nodes")), len(env.sandbox.pods())
        print(
            f"sandbox up in {time.monotonic() - t0:.1f}s: {nodes} nodes, {pods} pods (scenario: {args.scenario or 'none'})",
            flush=True,
        )
        print(
            f"  Kubernetes API  {env.sandbox.url}   kubectl --kubeconfig {kubeconfig} get nodes,pods -A",
            flush=True,
        )
        print(f"  AWS (moto)      {env.moto.endpoint_url}", flush=True)
        if runner is not None:
            print(f"  state machine   {runner.state_machine_arn}", flush=True)
            print(f"  trigger rules   {', '.join(runner.rules)} (default event bus)", flush=True)
        print(f"  settings        source {env_file}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        if runner is not None:
            runner.__exit__(None, None, None)
        env.stop()
        print("sandbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
