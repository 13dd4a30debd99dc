"""The roll's own metrics, as CloudWatch embedded metric format (EMF) lines on the Lambda's stdout
(Powertools Metrics): one namespace, dimensions cluster and ASG. CloudWatch Logs turns each line
into a data point; no PutMetricData call, no extra permission. The dashboard and the stalled-roll
alarm (infra/monitoring.py) read them by these names.

Each data point is written as its own EMF document at once: a step invocation serves one cluster
and one ASG, and nothing carries over to the next invocation of a warm Lambda (Powertools'
`Metrics` keeps its metric set at class level)."""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from .models import RollContext

log = logging.getLogger(__name__)

NAMESPACE = "EksRolling"
CLUSTER_DIMENSION, ASG_DIMENSION = "cluster", "asg"


class Metric(StrEnum):
    NODES_REPLACED = "NodesReplaced"
    NODE_REPLACEMENT_DURATION = "NodeReplacementDuration"
    DRAIN_DURATION = "DrainDuration"
    EVICTION_REFUSALS = "EvictionRefusals"  # 429: a PodDisruptionBudget said not now
    EVICTION_ERRORS = "EvictionErrors"  # any other failed eviction
    OWNERS_RECOVERY_TIME = "OwnersRecoveryTime"
    REDIS_WRITE_PAUSE = "RedisWritePause"  # per Sentinel switchover: writes held (CLIENT PAUSE)
    REDIS_FAILOVER_TIME = "RedisClusterFailoverTime"  # per CLUSTER FAILOVER: until seen done
    TEMP_CLUSTER_NODES = "TemporaryClusterNodesAlive"


# Also emitted with no dimension: the stalled-roll alarm (infra/monitoring.py) watches it.
ROLLUP = frozenset({Metric.NODES_REPLACED})

UNITS: dict[Metric, MetricUnit] = {
    Metric.NODES_REPLACED: MetricUnit.Count,
    Metric.NODE_REPLACEMENT_DURATION: MetricUnit.Seconds,
    Metric.DRAIN_DURATION: MetricUnit.Seconds,
    Metric.EVICTION_REFUSALS: MetricUnit.Count,
    Metric.EVICTION_ERRORS: MetricUnit.Count,
    Metric.OWNERS_RECOVERY_TIME: MetricUnit.Seconds,
    Metric.REDIS_WRITE_PAUSE: MetricUnit.Milliseconds,
    Metric.REDIS_FAILOVER_TIME: MetricUnit.Milliseconds,
    Metric.TEMP_CLUSTER_NODES: MetricUnit.Count,
}


def write(line: str) -> None:
    """Where an EMF document goes: stdout, which Lambda sends to CloudWatch Logs (the sandbox's
    Lambda bridge collects the lines instead)."""
    print(line, flush=True)


def document(ctx: RollContext, metric: Metric, value: float) -> dict[str, Any]:
    emf = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, metric_set={}, dimension_set={}, metadata_set={})
    emf.add_metric(metric.value, UNITS[metric], float(value))
    # dimensions given here, not added: POWERTOOLS_SERVICE_NAME would add a third one to the set
    dims = {CLUSTER_DIMENSION: ctx.cluster_name, ASG_DIMENSION: ctx.asg_name}
    doc: dict[str, Any] = dict(emf.serialize_metric_set(metrics=emf.metric_set, dimensions=dims))
    if metric in ROLLUP:  # also without dimensions: one series an alarm can watch for any ASG
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"].append([])
    return doc


def emit(ctx: RollContext, metric: Metric, value: float) -> None:
    """One data point for the roll's cluster and ASG. A dry run emits nothing (it changes
    nothing to count); a metric never fails a step."""
    if ctx.dry_run:
        return
    try:
        write(json.dumps(document(ctx, metric, value), separators=(",", ":")))
    except Exception:  # a bad value must not stop a roll half-way
        log.warning("metric %s=%r not emitted", metric.value, value, exc_info=True)


# Cluster phases during which the move's temporary node T exists (created in temp_start, gone
# once temp_remove is done).
_TEMP_ALIVE = frozenset(
    {"temp_join", "temp_sync", "failover_to_temp", "a_restart", "failover_to_a", "temp_remove"}
)


def redis_round(ctx: RollContext, before: Any, after: Any, moves: list[Any]) -> None:
    """What one MoveRedisPods round measured: each Sentinel switchover's write pause (writes held
    by CLIENT PAUSE WRITE, timed around the switchover), each Cluster failover's time (CLUSTER
    FAILOVER to T and back: until a later round saw the roles switched, so at most one polling
    interval more than the writes' own pause, on the steps' clock) and the temporary Cluster
    nodes alive on this node's moves. `before`/`after`: the advanced move."""
    old, new = before.data or {}, after.data or {}
    for key in ("failover_to_temp_s", "failback_s"):
        if new.get(key) is not None and old.get(key) is None:
            emit(ctx, Metric.REDIS_FAILOVER_TIME, float(new[key]) * 1000)
    for sw in (new.get("switchovers") or [])[len(old.get("switchovers") or []) :]:
        emit(ctx, Metric.REDIS_WRITE_PAUSE, float(sw.get("paused_ms") or 0))
    if any(m.kind == "cluster" for m in moves):
        emit(
            ctx,
            Metric.TEMP_CLUSTER_NODES,
            sum(1 for m in moves if m.kind == "cluster" and m.phase in _TEMP_ALIVE),
        )


def summarize(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric: namespace, dimension sets, data points, sum and max (demo report, tests)."""
    out: dict[str, dict[str, Any]] = {}
    for doc in documents:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for m in directive["Metrics"]:
                values = doc[m["Name"]]
                values = values if isinstance(values, list) else [values]
                s = out.setdefault(
                    m["Name"],
                    {"namespace": directive["Namespace"], "unit": m["Unit"], "dimensions": [], "values": []},
                )
                for dims in directive["Dimensions"]:
                    d = {k: doc[k] for k in dims}
                    if d not in s["dimensions"]:
                        s["dimensions"].append(d)
                s["values"].extend(float(v) for v in values)
    for s in out.values():
        vals = s.pop("values")
        s.update(points=len(vals), sum=round(sum(vals), 3), max=round(max(vals), 3))
    return out
