"""Bad Redis annotations are named plan blockers (naming the object), never an exception mid-roll."""

from __future__ import annotations

from typing import Any

from eks_rolling.labels import REDIS_GROUP, REDIS_KIND, REDIS_PORT, REDIS_ROLE
from eks_rolling.redis.discovery import discover_groups
from eks_rolling.services.redis.sentinel.survey import PRIORITY_ANNOTATION, Pod, annotation_problems


def _sts(name: str, **ann: str) -> dict[str, Any]:
    annotations = {REDIS_GROUP: "cache", **{k.replace("_", "-"): v for k, v in ann.items()}}
    return {"metadata": {"name": name, "namespace": "redis", "annotations": annotations}}


def _pod(name: str, **annotations: str) -> Pod:
    return Pod(name, "replica", "uid", "127.1.0.5", REDIS_PORT, "node-1", True, False, False, annotations)


def test_an_unknown_redis_kind_names_the_statefulset() -> None:
    (group,) = discover_groups(
        [
            _sts(
                "cache-master",
                **{REDIS_KIND: "sentinal", REDIS_ROLE: "master"},
            ),
            _sts(
                "cache-sentinel",
                **{REDIS_KIND: "sentinel", REDIS_ROLE: "sentinel"},
            ),
        ]
    )
    assert (
        "StatefulSet redis/cache-master has eks-rolling.io/redis-kind='sentinal': expected sentinel or cluster"
        in (group.problems)
    )


def test_a_non_integer_recorded_priority_is_a_problem_naming_the_pod() -> None:
    pods = [
        _pod("cache-replica-0", **{PRIORITY_ANNOTATION: "high"}),
        _pod("cache-replica-1", **{PRIORITY_ANNOTATION: "100"}),
    ]
    assert annotation_problems("redis", pods) == [
        f"pod redis/cache-replica-0 has {PRIORITY_ANNOTATION}='high': not a non-negative integer"
    ]
