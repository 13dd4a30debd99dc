"""`make bench`: every benchmark the README lists, one after another, each in a process of its
own with its default arguments (they print ratios from one run on this machine; none is a timed
test). Exits non-zero if any of them does, after running the rest.

Run: .venv/bin/python bench/run_all.py [--only sandbox_scale.py,roll_scale.py]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The README's "Benchmarks" list, in its order (tests/contract/test_bench_target.py keeps them equal).
BENCHES = ("sentinel_switchover.py", "cluster_migration.py", "sandbox_scale.py", "roll_scale.py")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(BENCHES))
    args = ap.parse_args(argv)
    chosen = [b for b in args.only.split(",") if b] or list(BENCHES)
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    failed: list[str] = []
    for name in chosen:
        print(f"== bench/{name}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run([sys.executable, str(HERE / name)], check=False).returncode
        print(f"== bench/{name}: exit {rc} after {time.monotonic() - t0:.0f}s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
