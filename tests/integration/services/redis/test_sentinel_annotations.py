"""A bad recorded replica-priority annotation on a Redis pod, against a real Sentinel group: the
plan's health check names the pod (a blocker), and Rollback's cleanup notes it instead of raising."""

from __future__ import annotations

from typing import Any

import pytest

from eks_rolling.services.redis.sentinel import PRIORITY_ANNOTATION
from tests.factories.redis_sentinel import NS, REPLICAS, SentinelField, requires

pytestmark = [*requires, pytest.mark.slow]


def test_a_non_integer_recorded_priority_blocks_the_plan_and_never_raises_in_cleanup(
    sentinel: SentinelField,
) -> None:
    # Given a replica whose recorded original priority is not an integer (edited by hand)
    def annotate(cur: dict[str, Any]) -> dict[str, Any]:
        cur["metadata"].setdefault("annotations", {})[PRIORITY_ANNOTATION] = "high"
        return cur

    sentinel.env.sandbox.store.mutate("pods", NS, REPLICAS[0], annotate)
    # When the plan checks the group, Then it is a problem naming the pod and the annotation
    assert f"pod {NS}/{REPLICAS[0]} has {PRIORITY_ANNOTATION}='high': not a non-negative integer" in (
        sentinel.health().problems
    )
    # ... and cleanup (Rollback) reports it and leaves the priority alone, without raising
    notes = sentinel.cleanup()
    assert any(f"{PRIORITY_ANNOTATION}='high' on {REPLICAS[0]} is not an integer" in n for n in notes), notes
    assert sentinel.priority(REPLICAS[0]) == 100
