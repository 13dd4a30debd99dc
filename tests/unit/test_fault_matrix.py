"""The fault matrix report: a fault with no passing test is a failed row, never a silent pass."""

from __future__ import annotations

from tests.factories.fault_matrix import FAULTS, build_report, markdown_table


def _result(fid: str, *, passed: bool = True, row: dict | None = None) -> dict:  # type: ignore[type-arg]
    out = {"id": fid, "passed": passed, "duration_s": 2.0}
    if not passed:
        out["failure"] = "AssertionError: boom"
    if row is not None:
        out["row"] = row
    return out


def test_every_fault_is_a_row_and_one_not_run_fails() -> None:
    results = {f"t::{fid}": _result(fid) for fid in FAULTS if fid != "F7"}
    report = build_report(results, "make faults")
    assert [r["id"] for r in report["faults"]] == list(FAULTS)
    f7 = next(r for r in report["faults"] if r["id"] == "F7")
    assert (f7["passed"], f7["outcome"]) == (False, "not run")
    assert (report["passed"], report["total"]) == (len(FAULTS) - 1, len(FAULTS))


def test_a_fault_passes_only_if_every_one_of_its_tests_passed() -> None:
    measured = {
        "id": "F8",
        "outcome": "stopped",
        "error": "RedisSwitchoverError",
        "lost_writes": 0,
        "numbers": {},
    }
    results = {"a::F8[1]": _result("F8", row=measured), "a::F8[2]": _result("F8", passed=False)}
    row = next(r for r in build_report(results, "x")["faults"] if r["id"] == "F8")
    assert row["passed"] is False and row["failures"] == ["a::F8[2]: AssertionError: boom"]
    assert (row["error"], row["lost_writes"], row["duration_s"]) == ("RedisSwitchoverError", 0, 4.0)
    assert "| F8 |" in markdown_table(build_report(results, "x")) and "| NO |" in markdown_table(
        build_report(results, "x")
    )
