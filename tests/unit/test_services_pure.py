"""Small pure pieces of the services: back-off, execution ids as taint values, saved state."""

from __future__ import annotations

import random

import pytest

from eks_rolling.services.drain import backoff_s
from eks_rolling.services.resolve import taint_value_for
from eks_rolling.services.saved import Saved, merged_stale, read_saved
from eks_rolling.settings import Settings

pytestmark = pytest.mark.unit


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    s = Settings(eviction_backoff_base_s=5, eviction_backoff_cap_s=60, poll_interval_s=10)
    rng = random.Random(7)
    seen = {k: [backoff_s(k, s, rng) for _ in range(200)] for k in range(1, 8)}
    for k, values in seen.items():
        cap = min(60, 5 * 2 ** (k - 1))
        assert min(values) >= max(1, cap // 2) and max(values) <= cap
        assert len(set(values)) > 1 or cap <= 2  # jittered
    assert backoff_s(0, s) == 5  # no 429: short poll


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        ("arn:aws:states:us-east-1:123456789012:execution:eks-rolling:run-1", "run-1"),
        (
            "arn:aws:states:us-east-1:123:execution:sm:2b2f1a44-8d43-4d1c-9b7e-0f3f2f8e3a11",
            "2b2f1a44-8d43-4d1c-9b7e-0f3f2f8e3a11",
        ),
    ],
)
def test_taint_value_is_the_execution_name(execution: str, expected: str) -> None:
    assert taint_value_for(execution) == expected


def test_taint_value_is_label_safe_for_long_names() -> None:
    v = taint_value_for("arn:aws:states:r:1:execution:sm:" + "x" * 80)
    assert v.startswith("run-") and len(v) <= 63


def test_saved_state_round_trips_and_stale_originals_win() -> None:
    tags = {
        "eks-rolling/saved/run-old": Saved(
            "run-old", ca=2, desired=6, min_size=3, max_size=8, processes=["AZRebalance"]
        ).encode(),
        "eks-rolling/saved/run-new": Saved("run-new", ca=0, desired=8).encode(),
        "team": "platform",
    }
    assert len(tags["eks-rolling/saved/run-old"]) < 256
    saved = read_saved(tags)
    assert set(saved) == {"run-old", "run-new"}
    stale = merged_stale(saved, "run-new")
    assert stale is not None and (stale.ca, stale.desired, stale.max_size, stale.processes) == (
        2,
        6,
        8,
        ["AZRebalance"],
    )
    assert merged_stale({"run-new": saved["run-new"]}, "run-new") is None
