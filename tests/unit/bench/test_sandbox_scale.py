"""bench/sandbox_scale.py's verdict: the per-pod growth check reports a superlinear series (a
number only counts if it can fail) and passes a linear one; sizes are validated."""

from __future__ import annotations

import pytest

from bench.sandbox_scale import growth_failures, parse_sizes, report


def _row(nodes: int, pods: int, seconds: float, cpu: float) -> dict:
    return {
        "nodes": nodes,
        "pods": pods,
        "seconds": seconds,
        "seconds_per_pod": seconds / pods,
        "cpu_seconds_per_pod": cpu / pods,
    }


def test_a_superlinear_series_fails_the_growth_bound() -> None:
    # Given 10x the pods taking 25x the time (the old scheduler's O(P^2))
    rows = [_row(100, 1500, 2.0, 1.5), _row(1000, 15000, 50.0, 49.5)]
    # Then both figures are reported over the 2x bound
    failures = growth_failures(rows)
    assert len(failures) == 2, failures
    assert failures[0].startswith("1000x15000: seconds_per_pod") and "2.50x" in failures[0], failures
    assert "cpu_seconds_per_pod" in failures[1] and "3.30x" in failures[1], failures
    assert report(rows)["failures"] == failures


def test_the_fixed_latency_cannot_hide_superlinear_growth() -> None:
    # Given a small first size whose wall time is mostly the fixed pod start + Ready latency
    rows = [_row(20, 200, 0.7, 0.2), _row(80, 800, 3.0, 2.5)]
    # Then the wall figure passes (1.07x) but the CPU one fails (3.1x)
    failures = growth_failures(rows)
    assert [f.split(" ")[1] for f in failures] == ["cpu_seconds_per_pod"], failures


def test_linear_growth_passes_and_ratios_are_reported() -> None:
    rows = [_row(100, 1500, 2.0, 1.5), _row(1000, 15000, 29.0, 28.5)]
    out = report(rows)
    assert out["failures"] == [] and out["profile"] == "fast"
    assert [r["ratio"] for r in out["sizes"]] == [1.0, 1.45]
    assert [r["cpu_ratio"] for r in out["sizes"]] == [1.0, 1.9]


@pytest.mark.parametrize("text", ["100", "100x", "x1500", "100x1500,", "0x10", "10x-1", "a x b"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected NODESxPODS|no sizes"):
        parse_sizes(text)


def test_sizes_parse() -> None:
    assert parse_sizes("100x1500, 1000x15000") == [(100, 1500), (1000, 15000)]
