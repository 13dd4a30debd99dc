"""bench/sandbox_scale.py on small sizes (20x200 vs 100x1000, about 15 s): the sandbox's
time to all-Ready per pod stays within the bench's 2x bound, and the same measurement with the
old scheduler's superlinear cost injected (every bind re-sums the requests of every bound pod,
as each scheduling attempt did before the scheduler's cache) is reported as a failure.
The full sizes (100x1500 vs 1000x15000) run in `make bench-sandbox`."""

from __future__ import annotations

from bench.sandbox_scale import growth_failures, measure, with_ratios
from eks_rolling.planning.resources import Resources
from eks_rolling_sandbox.api.store import WatchEvent
from eks_rolling_sandbox.controllers.scheduler_cache import pod_requests
from eks_rolling_sandbox.sandbox import Sandbox

SMALL, LARGE = (20, 200), (100, 1000)


def _resum_every_bound_pod(sb: Sandbox, ev: WatchEvent) -> None:
    """The pre-cache scheduler's cost per scheduling attempt: O(pods) for every pod."""
    if ev.obj["spec"].get("nodeName") and ev.old is not None and not ev.old["spec"].get("nodeName"):
        sum((pod_requests(p) for p in sb.store.all("pods") if p["spec"].get("nodeName")), Resources())


def test_the_sandbox_stays_within_the_growth_bound_at_small_sizes() -> None:
    rows = [measure(*SMALL), measure(*LARGE)]
    print([(r["nodes"], r["pods"], r["seconds"], r["cpu_ratio"]) for r in with_ratios(rows)])
    assert growth_failures(rows) == []
    assert all(r["controller_errors"] == 0 for r in rows)


def test_positive_control_an_injected_superlinear_cost_is_reported() -> None:
    rows = [measure(*SMALL, hook=_resum_every_bound_pod), measure(*LARGE, hook=_resum_every_bound_pod)]
    print([(r["nodes"], r["pods"], r["seconds"], r["cpu_ratio"]) for r in with_ratios(rows)])
    failures = growth_failures(rows)
    assert any(f.startswith("100x1000: cpu_seconds_per_pod") for f in failures), failures
