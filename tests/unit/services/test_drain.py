"""Drain's eviction back-off: exponential with jitter, capped."""

from __future__ import annotations

import random

from eks_rolling.services.drain import backoff_s
from eks_rolling.settings import Settings


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    s = Settings(eviction_backoff_base_s=5, eviction_backoff_cap_s=60, poll_interval_s=10)
    rng = random.Random(7)
    seen = {k: [backoff_s(k, s, rng) for _ in range(200)] for k in range(1, 8)}
    for k, values in seen.items():
        cap = min(60, 5 * 2 ** (k - 1))
        assert min(values) >= max(1, cap // 2) and max(values) <= cap
        assert len(set(values)) > 1 or cap <= 2  # jittered
    assert backoff_s(0, s) == 5  # no 429: short poll
