"""eks_rolling.metrics: the EMF documents (as CloudWatch parses them from stdout) and what a
MoveRedisPods round measures: each switchover's write pause and the temporary Cluster nodes alive."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from eks_rolling.metrics import Metric, emit, redis_round, summarize
from eks_rolling.models import RedisMove, RollContext

CTX = RollContext(
    execution_id="arn:x", asg_name="workers", cluster_name="prod", dry_run=False, taint_value="t"
)


def _move(kind: Literal["sentinel", "cluster"], phase: str, **data: Any) -> RedisMove:
    return RedisMove(
        namespace="redis",
        group="g",
        kind=kind,
        pod=f"{kind}-0",
        role="node",
        statefulset=kind,
        phase=phase,
        data=data,
    )


def _written(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_metric_is_one_emf_document_on_stdout_with_cluster_and_asg(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "eks-rolling")  # as the deployed Lambdas have
    emit(CTX, Metric.DRAIN_DURATION, 12.5)
    (doc,) = _written(capsys)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "EksRolling" and directive["Dimensions"] == [["cluster", "asg"]]
    assert directive["Metrics"] == [{"Name": "DrainDuration", "Unit": "Seconds"}]
    assert doc["cluster"] == "prod" and doc["asg"] == "workers" and doc["DrainDuration"] == [12.5]


def test_a_dry_run_emits_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    emit(CTX.model_copy(update={"dry_run": True}), Metric.NODES_REPLACED, 1)
    assert _written(capsys) == []


def test_each_switchover_pause_is_emitted_once_and_temp_nodes_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A Cluster move whose failover to T was just measured, while T is alive
    before = _move("cluster", "failover_to_temp", temp="t")
    after = _move("cluster", "a_restart", temp="t", failover_to_temp_s=0.25)
    redis_round(CTX, before, after, [after])
    # ... the next round measures nothing new; then the failback is measured and T removed
    redis_round(CTX, after, after, [after])
    back = _move("cluster", "done", temp="t", failover_to_temp_s=0.25, failback_s=0.5)
    redis_round(CTX, after, back, [back])
    # A Sentinel move whose second switchover was just measured
    s1 = _move("sentinel", "steer", switchovers=[{"paused_ms": 40}])
    s2 = _move("sentinel", "done", switchovers=[{"paused_ms": 40}, {"paused_ms": 70}])
    redis_round(CTX, s1, s2, [s2])
    found = summarize(_written(capsys))
    assert (
        found["RedisClusterFailoverTime"]["points"] == 2 and found["RedisClusterFailoverTime"]["sum"] == 750
    )
    assert found["RedisWritePause"]["points"] == 1 and found["RedisWritePause"]["sum"] == 70
    assert found["RedisWritePause"]["unit"] == found["RedisClusterFailoverTime"]["unit"] == "Milliseconds"
    # T counted while alive (two rounds), gone after temp_remove; no Cluster move, no gauge
    assert (
        found["TemporaryClusterNodesAlive"]["points"] == 3 and found["TemporaryClusterNodesAlive"]["sum"] == 2
    )
