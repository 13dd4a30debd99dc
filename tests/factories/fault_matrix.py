"""The fault matrix (`make faults`): tests marked `@pytest.mark.fault("F<n>")` are its rows.

Each row's test injects its fault into a real roll and asserts the outcome; through the
`fault_row` fixture it also records what it measured (outcome, error, what was restored, writes
lost). With `--fault-report PATH` the session writes one JSON row per fault and prints a table;
a fault of `FAULTS` with no passing test is a failed row. Rows marked `matrix_only=True` are
slower variants that run only with `--fault-report` (`make test` runs the others).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

# id -> (name, expected outcome)
FAULTS: dict[str, tuple[str, str]] = {
    "F1": ("new nodes never Ready", "FAILED NewNodesTimeoutError, rolled back"),
    "F2": ("a PDB that never allows", "FAILED DrainTimeoutError naming the PDB, rolled back"),
    "F3": ("a Lambda killed after its side effect, before it returns", "SUCCEEDED after retries"),
    "F4": ("Kubernetes API 5xx and timeouts, AWS throttling", "SUCCEEDED after retries"),
    "F5": ("ScalingActivityInProgress, one AZ out of capacity during surge", "SUCCEEDED"),
    "F6": ("a Redis replica that never syncs", "no failover, named error, no write lost"),
    "F7": ("a sentinel unreachable", "aborted before the switchover, nothing paused"),
    "F8": ("the switchover step dying after the pause", "writes released, none lost"),
    "F9": ("a temporary Cluster node that never syncs", "temporary node removed, master stays"),
    "F10": ("duplicate and overlapping triggers", "SUCCEEDED once, the other skipped"),
    "F11": ("operator abort mid-drain, then a new trigger", "new run restores and SUCCEEDED"),
    "F12": ("an old instance terminated by someone else mid-roll", "SUCCEEDED"),
    "F13": ("a Lambda Inactive on first invoke", "SUCCEEDED after retries"),
    "F14": ("a run killed past its deadline, lock taken over", "new run restores and SUCCEEDED"),
    "F15": ("cluster-autoscaler Deployment edited during the roll", "SUCCEEDED, the edit kept"),
}
REPORT_OPTION = "--fault-report"
_ROW_KEY = "fault-row"
# nodeid -> its phases' results merged; filled in the process that writes the report (under
# xdist the controller, which gets every worker's reports with their user_properties).
_RESULTS: dict[str, dict[str, Any]] = {}
_STARTED = time.monotonic()


@dataclass
class FaultRow:
    """What one fault's run measured; `None` where a row does not apply (e.g. Redis writes)."""

    id: str
    injected: str = ""
    outcome: str = ""
    error: str | None = None
    restored: bool | None = None
    lost_writes: int | None = None
    pdb_violations: int | None = None
    numbers: dict[str, Any] = field(default_factory=dict)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(REPORT_OPTION, default=None, help="write the fault matrix report (JSON) here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(id, matrix_only=False): a row of the fault matrix")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    full = config.getoption(REPORT_OPTION) is not None
    for item in items:
        mark = item.get_closest_marker("fault")
        if mark is None:
            continue
        if mark.args[0] not in FAULTS:
            raise pytest.UsageError(f"{item.nodeid}: unknown fault id {mark.args[0]!r}")
        if mark.kwargs.get("matrix_only") and not full:
            item.add_marker(pytest.mark.skip(reason="fault matrix only: make faults"))


@pytest.fixture
def fault_row(request: pytest.FixtureRequest) -> Iterator[FaultRow]:
    mark = request.node.get_closest_marker("fault")
    assert mark is not None, "fault_row is for tests marked @pytest.mark.fault"
    row = FaultRow(mark.args[0])
    yield row
    request.node.user_properties.append((_ROW_KEY, asdict(row)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker("fault")
    if mark is not None:
        item.user_properties.append(("fault-id", mark.args[0]))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Merged over setup/call/teardown; under xdist this runs in the controller, and the
    worker's user_properties travel with each report."""
    props = dict(report.user_properties)
    if "fault-id" not in props:
        return
    r = _RESULTS.setdefault(report.nodeid, {"id": props["fault-id"], "passed": True, "duration_s": 0.0})
    r["duration_s"] += report.duration
    if report.failed:
        r["passed"] = False
        r.setdefault("failure", str(report.longrepr).strip().splitlines()[-1][:300])
    if report.skipped and report.when != "teardown":
        r["skipped"] = True
    if _ROW_KEY in props:
        r["row"] = props[_ROW_KEY]


def build_report(results: dict[str, dict[str, Any]], command: str) -> dict[str, Any]:
    """One row per fault of `FAULTS`: passed only if every test of that fault ran and passed."""
    rows = []
    for fid, (name, expected) in FAULTS.items():
        tests = {k: v for k, v in results.items() if v["id"] == fid and not v.get("skipped")}
        measured = [v["row"] for v in tests.values() if "row" in v]
        first: dict[str, Any] = measured[0] if measured else {}
        failures = [f"{k}: {v['failure']}" for k, v in tests.items() if not v["passed"]]
        rows.append(
            {
                "id": fid,
                "name": name,
                "expected": expected,
                "injected": first.get("injected", ""),
                "outcome": first.get("outcome") or ("not run" if not tests else ""),
                "error": first.get("error"),
                "restored": first.get("restored"),
                "lost_writes": first.get("lost_writes"),
                "pdb_violations": first.get("pdb_violations"),
                "numbers": {k: v for row in measured for k, v in row.get("numbers", {}).items()},
                "duration_s": round(sum(v["duration_s"] for v in tests.values()), 1),
                "tests": sorted(tests),
                "passed": bool(tests) and not failures,
                "failures": failures,
                "command": command,
            }
        )
    return {"faults": rows, "passed": sum(r["passed"] for r in rows), "total": len(rows)}


def format_table(report: dict[str, Any]) -> str:
    head = f"{'id':<4} {'ok':<3} {'outcome':<27} {'error':<23} {'restored':<8} {'pdb':<4} {'lost':<4} {'s':>6}  name"
    lines = [head]
    for r in report["faults"]:
        lines.append(
            f"{r['id']:<4} {'yes' if r['passed'] else 'NO':<3} {str(r['outcome'])[:27]:<27} "
            f"{str(r['error'] or '-')[:23]:<23} {r['restored']!s:<8} {r['pdb_violations']!s:<4} "
            f"{r['lost_writes']!s:<4} {r['duration_s']:>6}  {r['name']}"
        )
    lines.append(f"{report['passed']}/{report['total']} faults passed")
    return "\n".join(lines)


def markdown_table(report: dict[str, Any]) -> str:
    """The README's matrix, from a report."""
    lines = [
        "| id | fault | expected | measured outcome | failed attempts | restored | PDB violations | writes lost "
        "| s | passed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["faults"]:
        outcome = r["outcome"] + (f" `{r['error']}`" if r["error"] else "")
        attempts = r["numbers"].get("failed_attempts")
        tried = ", ".join(f"{k} {v}" for k, v in attempts.items()) or "0" if attempts is not None else "-"
        lines.append(
            f"| {r['id']} | {r['name']} | {r['expected']} | {outcome} | {tried} | {_dash(r['restored'])} | "
            f"{_dash(r['pdb_violations'])} | {_dash(r['lost_writes'])} | {r['duration_s']} | "
            f"{'yes' if r['passed'] else 'NO'} |"
        )
    return "\n".join(lines)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


if __name__ == "__main__":  # python -m tests.factories.fault_matrix build/fault-report.json
    print(markdown_table(json.loads(Path(sys.argv[1]).read_text())))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    path = config.getoption(REPORT_OPTION)
    if path is None or hasattr(config, "workerinput") or config.option.collectonly:
        return
    command = "make faults  # " + shlex.join(["pytest", *sys.argv[1:]])
    report = build_report(_RESULTS, command)
    report["wall_s"] = round(time.monotonic() - _STARTED, 1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "fault matrix")
        reporter.write_line(format_table(report))
        reporter.write_line(f"report: {out}")
    if report["passed"] != report["total"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
