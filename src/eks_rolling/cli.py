"""The `eks-rolling` command: `demo` (the local sandbox, end to end), `plan` (a dry-run plan for a
person), `start` and `status` (an execution of the deployed state machine)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from eks_rolling_sandbox.demo import run_demo

    report = run_demo(out_dir=Path(args.out), redis=args.redis)
    ok = (
        report["execution"]["status"] == "SUCCEEDED"
        and report["old_instances_left"] == 0
        and report["pdb_violations"] == 0
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eks-rolling", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="roll the field-report scenario on the local sandbox")
    demo.add_argument("--out", default="build", help="where the report and history go")
    demo.add_argument("--redis", action="store_true", help="include the Redis groups (needs the Redis steps)")
    demo.set_defaults(fn=_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    rc: int = args.fn(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
