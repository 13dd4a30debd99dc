"""Capacity, end to end: pods are fitted by their requests, so a roll to a smaller instance type
must surge enough room for what each batch evicts, and the plan must see when it cannot."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from eks_rolling.labels import LABEL_INSTANCE_TYPE_STABLE
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import pod_is_ready
from eks_rolling_sandbox.sandbox import Sandbox
from tests.e2e.conftest import Field

pytestmark = [pytest.mark.slow]
WORKERS = {"nodeSelector": {"role": "worker"}}


class PendingClock:
    """How long each pod (by uid) waited unscheduled, sampled every 50 ms from the store."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.first_seen: dict[str, float] = {}
        self.waited: dict[str, float] = {}
        self.names: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for p in self.sb.store.all("pods"):
                uid = p["metadata"]["uid"]
                if uid in self.waited or "deletionTimestamp" in p["metadata"]:
                    continue
                self.first_seen.setdefault(uid, now)
                self.names[uid] = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                if p["spec"].get("nodeName"):
                    self.waited[uid] = now - self.first_seen[uid]
            time.sleep(0.05)

    def longest(self) -> tuple[float, str]:
        now = time.monotonic()
        waits = {**{u: now - t for u, t in self.first_seen.items() if u not in self.waited}, **self.waited}
        uid = max(waits, key=lambda u: waits[u], default="")
        return (waits.get(uid, 0.0), self.names.get(uid, ""))

    @contextmanager
    def running(self) -> Iterator[PendingClock]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5)


def _memory_heavy_cache(field: Field) -> None:
    """12 pods of 2 GiB on the 6 old m5.large workers (7518 MiB allocatable): two per node.
    A c5.large (4 GiB: 3422 MiB allocatable) holds one, so each old node needs two new ones."""
    sb = field.env.sandbox
    sb.apply(m.deployment("cache", "shop", 12, requests={"cpu": "100m", "memory": "2Gi"}, **WORKERS))
    sb.apply(m.pdb("cache", "shop", selector={"app": "cache"}, max_unavailable=2))
    sb.wait_for(
        lambda: len([p for p in sb.pods("shop", "app=cache") if pod_is_ready(p)]) == 12,
        timeout=30,
        what="cache ready",
    )


def test_a_surge_that_cannot_hold_the_evicted_pods_is_blocked_by_the_plan(field: Field) -> None:
    # Given a worker pod asking for 5 GiB, which an m5.large holds but a c5.large never can
    sb = field.env.sandbox
    sb.apply(m.deployment("reports", "shop", 1, requests={"cpu": "500m", "memory": "5Gi"}, **WORKERS))
    sb.wait_for(
        lambda: [pod_is_ready(p) for p in sb.pods("shop", "app=reports")] == [True], what="reports ready"
    )
    [reports] = sb.pods("shop", "app=reports")
    # When the launch template moves the group to c5.large and the roll starts
    event = field.scenario.bump_launch_template(instance_type="c5.large")
    before = field.state()
    mark = sb.request_log.mark()
    with field.runner() as runner:
        result = runner.run(event, timeout=60)
    # Then the plan names the batch, the zone and what is missing, and nothing was changed
    assert result["status"] == "FAILED" and result["error"] == "PlanBlockedError", result
    cause = result["cause"]
    node = reports["spec"]["nodeName"]
    assert f"({node}" in cause or f", {node})" in cause, cause
    assert "cannot hold its evicted pods in any zone: missing 500m cpu, 5120Mi memory" in cause, cause
    assert "shop/" + reports["metadata"]["name"] + " request more than a new node can hold" in cause, cause
    assert not sb.request_log.writes(mark)
    after = field.state()
    assert (after.desired, after.max_size, len(after.instances)) == (
        before.desired,
        before.max_size,
        len(before.instances),
    )


def test_with_room_the_roll_surges_enough_and_no_pod_waits_longer_than_a_boot(field: Field) -> None:
    # Given two 2 GiB cache pods on each old m5.large, and the group moving to c5.large
    _memory_heavy_cache(field)
    sb = field.env.sandbox
    boot_s = sb.timings.node_boot_s + sb.timings.node_ready_s
    before = field.state()
    monitor = field.monitor()
    # When the roll runs (batches of 2 old nodes)
    with PendingClock(sb).running() as pending, field.runner() as runner:
        result = runner.run(field.scenario.bump_launch_template(instance_type="c5.large"), timeout=300)
        history = runner.history(result["executionArn"])
        waited, who = pending.longest()
        # Positive control, same clock: a pod no new node can hold waits past a boot
        sb.apply(m.deployment("too-big", "shop", 1, requests={"cpu": "100m", "memory": "6Gi"}, **WORKERS))
        time.sleep(boot_s + 1.0)
        control, control_who = pending.longest()
    monitor.stop()
    print(
        f"longest Pending {waited:.2f}s ({who}); boot {boot_s:.1f}s; control {control:.2f}s ({control_who})"
    )
    # Then it succeeded, every surge gave each old node two c5.large, and no evicted pod waited
    # unscheduled longer than an instance takes to boot
    assert result["status"] == "SUCCEEDED", result.get("cause")
    outputs = [
        json.loads(ev["lambdaFunctionSucceededEventDetails"]["output"])
        for ev in history
        if ev["type"] == "LambdaFunctionSucceeded"
    ]
    # 6 + 4 for the first batch, then +4 -2 per batch: the old rule would have surged 8 each time
    assert [o["desired"] for o in outputs if "raised_max" in o] == [10, 12, 14], outputs
    after = field.state()
    new_nodes = [
        n
        for n in sb.store.all("nodes")
        if n["metadata"]["labels"].get(LABEL_INSTANCE_TYPE_STABLE) == "c5.large"
    ]
    assert len(after.instances) == 12 and len(new_nodes) == 12, (len(after.instances), len(new_nodes))
    assert waited <= boot_s, (waited, who)
    assert monitor.violations == 0
    assert len([p for p in sb.pods("shop", "app=cache") if pod_is_ready(p)]) == 12
    assert before.desired == 6 and after.desired == 12
    assert control > boot_s and control_who.startswith("shop/too-big"), (control, control_who)
