"""Lambda cold start benchmark: what a function's first invoke spends importing its handler, with the
layer as built (compiled for CPython 3.12) and as it was (no bytecode), at each memory size.

Lambda's /opt is read-only: a layer without bytecode is compiled on EVERY cold start. Lambda gives a
function CPU in proportion to its memory (one vCPU at 1,769 MB), and importing is single-threaded,
so the import's CPU time, measured here in fresh CPython 3.12 processes, is scaled by 1769 / MB
below one vCPU. The init phase has 10 s before Lambda gives up and retries it inside the invoke.

Needs `make synth` first (build/lambda-code and the compiled build/lambda-layer). boto3 and botocore
come with Lambda's runtime, not the layer: they are taken from this venv and compiled in both cases.

Run: .venv/bin/python bench/lambda_cold_start.py [--runs 5] [--handler lambdas.plan_roll]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import botocore
import s3transfer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `infra` is the repo's, not installed
from infra.packaging import (
    CODE_DIR,
    LAYER_DIR,
    MEASURED_COLD_IMPORT_CPU_S,
    VCPU_MB,
    check_bytecode,
    cold_import_s,
    compile_layer,
    find_layer_python,
    memory_for,
)

SIZES_MB = (512, 1024, 1536, 1769)
INIT_LIMIT_S = 10.0

PROBE = """
import resource, sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter(); r0 = resource.getrusage(resource.RUSAGE_SELF)
import {handler}
r1 = resource.getrusage(resource.RUSAGE_SELF)
print((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), time.perf_counter() - t0)
"""


def runtime_packages(dest: Path, python: str) -> Path:
    """boto3/botocore/s3transfer as the Lambda runtime provides them (compiled)."""
    for module in (boto3, botocore, s3transfer):
        src = Path(module.__file__).parent  # type: ignore[arg-type]
        shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    compile_layer(dest, python)
    return dest


def measure(python: str, handler: str, paths: list[Path], runs: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of importing `handler` in fresh processes, writing no
    bytecode (like /opt)."""
    cpu, wall = [], []
    for _ in range(runs):
        out = subprocess.run(
            [python, "-I", "-B", "-c", PROBE.format(paths=[str(p) for p in paths], handler=handler)],
            capture_output=True,
            text=True,
            check=True,
        )
        c, w = map(float, out.stdout.split())
        cpu.append(c)
        wall.append(w)
    return statistics.median(cpu), statistics.median(wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--handler", default="lambdas.plan_roll")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    python = find_layer_python()
    site = LAYER_DIR / "python"
    if not (CODE_DIR / "lambdas").is_dir() or check_bytecode(site) == 0:
        raise SystemExit("run `make synth` first: it stages the code and builds the compiled layer")
    with tempfile.TemporaryDirectory() as tmp:
        runtime = runtime_packages(Path(tmp) / "runtime", python)
        bare = Path(tmp) / "uncompiled"
        shutil.copytree(site, bare, ignore=shutil.ignore_patterns("__pycache__"))
        results = {
            "compiled": measure(python, args.handler, [CODE_DIR, site, runtime], args.runs),
            "uncompiled": measure(python, args.handler, [CODE_DIR, bare, runtime], args.runs),
        }
    report = {
        name: {"cpu_s": round(cpu, 3), **{f"{mb}MB_s": round(cold_import_s(cpu, mb), 2) for mb in SIZES_MB}}
        for name, (cpu, _) in results.items()
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"import {args.handler}: median of {args.runs} fresh CPython 3.12 processes ({python})")
    print(f"{'layer':<12} {'CPU s':>7} " + " ".join(f"{mb:>6} MB" for mb in SIZES_MB))
    for name, row in report.items():
        print(f"{name:<12} {row['cpu_s']:>7.2f} " + " ".join(f"{row[f'{mb}MB_s']:>8.2f}" for mb in SIZES_MB))
    print(f"(seconds of init at each memory size; Lambda's init phase gives up at {INIT_LIMIT_S:.0f} s)")
    cpu = results["compiled"][0]
    print(
        f"memory for this measurement: {memory_for(cpu)} MB; infra/packaging.py records "
        f"MEASURED_COLD_IMPORT_CPU_S = {MEASURED_COLD_IMPORT_CPU_S} -> {memory_for(MEASURED_COLD_IMPORT_CPU_S)} MB "
        f"(one vCPU is {VCPU_MB} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
