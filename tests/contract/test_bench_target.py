"""`make bench` runs what the README says it runs: the Makefile's bench recipe calls a script
that exists, and that script's list of benchmarks is the README's, each an existing file.
(The recipe used to call bench/run_all.py, which did not exist.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        out.append(line.strip())
    return out


def test_make_bench_runs_the_benchmarks_the_readme_lists() -> None:
    scripts = [m for line in _recipe("bench") for m in re.findall(r"bench/[\w./]+\.py", line)]
    assert scripts == ["bench/run_all.py"], _recipe("bench")
    runner = ROOT / scripts[0]
    assert runner.is_file(), f"make bench calls {runner}, which does not exist"
    spec = importlib.util.spec_from_file_location("bench_run_all", runner)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Benchmarks**") :]
    section = "\n\n".join(section.split("\n\n")[:2])  # the paragraph and its list
    listed = [p.removeprefix("bench/") for p in re.findall(r"`(bench/\w+\.py)`", section)]
    listed = [p for p in listed if p != "run_all.py"]
    assert list(module.BENCHES) == listed
    for name in module.BENCHES:
        assert (ROOT / "bench" / name).is_file(), name
