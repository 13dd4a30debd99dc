"""`eks-rolling-sandbox up --kubeconfig PATH [--scenario NAME]`: run a sandbox in the foreground.

It writes a kubeconfig for kubectl and an env file that points eks-rolling at the sandbox
(`source` it, then e.g. `eks-rolling plan --asg eks-workers`). Ctrl-C (or SIGTERM) stops
everything, Redis processes included.

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

from .env import SandboxEnv
from .scenarios import SCENARIOS


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
    env = SandboxEnv(cluster_name=args.cluster_name, redis=args.scenario is not None and not args.no_redis)
    try:
        env.start()
        if args.scenario:
            SCENARIOS[args.scenario](env, redis=not args.no_redis)
        kubeconfig = env.kubeconfig(args.kubeconfig)
        env_file = args.env_file or kubeconfig.with_name(kubeconfig.name + ".env")
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in sorted(env.tool_env().items())))
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
        print(f"  settings        source {env_file}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        env.stop()
        print("sandbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
