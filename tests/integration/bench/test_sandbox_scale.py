"""bench/sandbox_scale.py on small sizes (20x200 vs 100x1000, about 15 s): the sandbox's
time to all-Ready per pod stays within the bench's 2x bound, and the same measurement with the
old scheduler's superlinear cost injected (every bind re-sums the requests of every bound pod,
as each scheduling attempt did before the scheduler's cache) is reported as a failure.
Each size runs in its own fresh process (`measure_isolated`): in a shared pytest worker, threads
left by earlier tests were counted in the CPU figure and once hid the control's cost.
The full sizes (100x1500 vs 1000x15000) run in `make bench-sandbox`."""

from __future__ import annotations

from bench.sandbox_scale import growth_failures, measure_isolated, resum_every_bound_pod, with_ratios

SMALL, LARGE = (20, 200), (100, 1000)


def test_the_sandbox_stays_within_the_growth_bound_at_small_sizes() -> None:
    rows = [measure_isolated(*SMALL), measure_isolated(*LARGE)]
    print([(r["nodes"], r["pods"], r["seconds"], r["cpu_ratio"]) for r in with_ratios(rows)])
    assert growth_failures(rows) == []
    assert all(r["controller_errors"] == 0 for r in rows)


def test_positive_control_an_injected_superlinear_cost_is_reported() -> None:
    hook = resum_every_bound_pod
    rows = [measure_isolated(*SMALL, hook=hook), measure_isolated(*LARGE, hook=hook)]
    print([(r["nodes"], r["pods"], r["seconds"], r["cpu_ratio"]) for r in with_ratios(rows)])
    failures = growth_failures(rows)
    assert any(f.startswith("100x1000: cpu_seconds_per_pod") for f in failures), failures
