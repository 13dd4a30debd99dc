"""The roll's own metrics: the EMF documents the steps write during a real sandbox roll (collected
by the Lambda bridge, as CloudWatch Logs reads a Lambda's stdout), each with the namespace and
the cluster and ASG dimensions the dashboard and the stalled-roll alarm read."""

from __future__ import annotations

import pytest

from eks_rolling.metrics import ASG_DIMENSION, CLUSTER_DIMENSION, NAMESPACE, Metric, summarize
from tests.e2e.conftest import Field

pytestmark = [pytest.mark.slow]


def test_a_roll_writes_its_metrics_as_emf_with_cluster_and_asg(field: Field) -> None:
    # Given the field-report roll (6 old nodes; its PDBs refuse some evictions with 429) and an
    # apiserver that fails the first two evictions with a 500 (retried by the state machine)
    sb = field.env.sandbox
    errors = sb.faults.add(method="POST", path=r"/eviction$", status=500, times=2)
    with field.runner() as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        documents = list(runner.stats.emf)
    assert result["status"] == "SUCCEEDED" and errors.fired == 2
    found = summarize(documents)

    # Then every node metric is there, in one namespace, with exactly the cluster and ASG dimensions
    dims = [{CLUSTER_DIMENSION: "sandbox", ASG_DIMENSION: field.scenario.asg_name}]
    redis = {Metric.REDIS_WRITE_PAUSE, Metric.REDIS_FAILOVER_TIME, Metric.TEMP_CLUSTER_NODES}
    node_metrics = set(Metric) - redis  # no Redis pod here
    assert set(found) == node_metrics, sorted(found)
    for name, s in found.items():
        # (NodesReplaced also without dimensions: the series the stalled-roll alarm watches)
        rollup: list[dict[str, str]] = [{}] if name == Metric.NODES_REPLACED else []
        assert s["namespace"] == NAMESPACE and s["dimensions"] == dims + rollup, (name, s)
    for doc in documents:  # cluster and ASG, nothing more (POWERTOOLS_SERVICE_NAME adds none)
        assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == [CLUSTER_DIMENSION, ASG_DIMENSION]
    # ... with the roll's numbers: 6 nodes replaced, a duration for each node, its drain and its
    # owners' recovery, the 429s the PDBs answered and the two failed evictions
    assert found["NodesReplaced"]["points"] == 6 and found["NodesReplaced"]["sum"] == 6
    for name in ("NodeReplacementDuration", "DrainDuration", "OwnersRecoveryTime"):
        assert found[name]["points"] == 6 and found[name]["unit"] == "Seconds", found[name]
    assert 0 < found["DrainDuration"]["max"] < found["NodeReplacementDuration"]["max"]
    assert found["EvictionErrors"]["sum"] == 2
    refused = sum(1 for e in sb.request_log.entries(0) if e.path.endswith("/eviction") and e.status == 429)
    assert refused > 0 and found["EvictionRefusals"]["sum"] == refused
