"""Capacity, end to end: pods are fitted by their requests, so a roll to a smaller instance type
must surge enough room for what each batch evicts, and the plan must see when it cannot.

The "with room" roll runs in the REALISTIC timing profile (90 s EC2 boot to Ready, 8 s pod start,
the tool's default 10 s polls and 30 s deregistration delay), all scaled by one time factor as in
test_realistic_roll.py, so "no pod Pending longer than a boot" compares real-world ratios.
Re-measure: `.venv/bin/pytest tests/e2e/test_capacity.py -s -n 0` prints the longest Pending."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from eks_rolling.aws.asg import AsgOps
from eks_rolling.labels import LABEL_INSTANCE_TYPE_STABLE
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import pod_is_ready
from eks_rolling_sandbox.api.store import WatchEvent
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.runner import LocalRunner
from eks_rolling_sandbox.sandbox import Sandbox
from eks_rolling_sandbox.scenarios import field_report
from eks_rolling_sandbox.timing import REALISTIC
from tests.e2e.conftest import Field

pytestmark = [pytest.mark.slow]
WORKERS = {"nodeSelector": {"role": "worker"}}
FACTOR = 0.05
# The tool's defaults (10 s polls, 30 s deregistration delay, 900/900/600 s deadlines), two old
# nodes per batch.
REALISTIC_SETTINGS = {"batch_size": "2", "POWERTOOLS_LOG_LEVEL": "WARNING"}


@pytest.fixture
def realistic() -> Iterator[Field]:
    with SandboxEnv(timing_profile="realistic", time_factor=FACTOR) as env:
        scenario = field_report(env, redis=False)
        yield Field(env, scenario, AsgOps(env.aws("autoscaling"), env.aws("ec2")))


class PendingClock:
    """How long each pod (by uid) waited unscheduled: from the store's commit stream, so the
    moment a pod is created and the moment it is bound are exact (no sampling)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.since: dict[str, float] = {}
        self.waited: dict[str, float] = {}
        self.names: dict[str, str] = {}

    def __call__(self, ev: WatchEvent) -> None:  # under the store lock: quick, no writes
        if ev.resource.plural != "pods":
            return
        md, now = ev.obj["metadata"], time.monotonic()
        uid = md["uid"]
        if uid in self.waited:
            return
        if ev.type != "DELETED" and not ev.obj["spec"].get("nodeName") and "deletionTimestamp" not in md:
            self.since.setdefault(uid, now)
            self.names[uid] = f"{md['namespace']}/{md['name']}"
        elif uid in self.since:  # bound, or deleted while Pending: the wait is over
            self.waited[uid] = now - self.since.pop(uid)

    def longest(self, prefix: str = "") -> tuple[float, str]:
        now = time.monotonic()
        waits = {**{u: now - t for u, t in self.since.items()}, **self.waited}
        waits = {u: w for u, w in waits.items() if self.names[u].startswith(prefix)}
        uid = max(waits, key=lambda u: waits[u], default="")
        return (waits.get(uid, 0.0), self.names.get(uid, ""))

    @contextmanager
    def running(self) -> Iterator[PendingClock]:
        with self.sb.store.lock:
            now = time.monotonic()
            for p in self.sb.store.all("pods"):
                md = p["metadata"]
                if not p["spec"].get("nodeName") and "deletionTimestamp" not in md:
                    self.since[md["uid"]] = now
                    self.names[md["uid"]] = f"{md['namespace']}/{md['name']}"
            unsubscribe = self.sb.store.subscribe(self)
        try:
            yield self
        finally:
            unsubscribe()


def _memory_heavy_cache(field: Field, timeout: float = 30) -> None:
    """12 pods of 2 GiB on the 6 old m5.large workers (7518 MiB allocatable): two per node.
    A c5.large (4 GiB: 3422 MiB allocatable) holds one, so each old node needs two new ones."""
    sb = field.env.sandbox
    sb.apply(m.deployment("cache", "shop", 12, requests={"cpu": "100m", "memory": "2Gi"}, **WORKERS))
    sb.apply(m.pdb("cache", "shop", selector={"app": "cache"}, max_unavailable=2))
    sb.wait_for(
        lambda: len([p for p in sb.pods("shop", "app=cache") if pod_is_ready(p)]) == 12,
        timeout=timeout,
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


def test_with_room_the_roll_surges_enough_and_no_pod_waits_longer_than_a_boot(realistic: Field) -> None:
    # Given two 2 GiB cache pods on each old m5.large, and the group moving to c5.large, in the
    # realistic profile: a node takes 60 s + 30 s (+-33 %) from launch to Ready
    _memory_heavy_cache(realistic, timeout=60)
    sb = realistic.env.sandbox
    assert realistic.env.timing_profile is REALISTIC
    boot_real_s = REALISTIC.node_boot_s + REALISTIC.node_ready_s
    boot_s = boot_real_s * FACTOR  # the profile's nominal boot on this run's wall clock
    before = realistic.state()
    monitor = realistic.monitor()
    # When the roll runs (batches of 2 old nodes), with the tool's default polls and delays
    with (
        PendingClock(sb).running() as pending,
        LocalRunner(realistic.env, settings=REALISTIC_SETTINGS) as runner,
    ):
        assert runner.time_scale == FACTOR and runner.scales_clock
        result = runner.run(realistic.scenario.bump_launch_template(instance_type="c5.large"), timeout=300)
        history = runner.history(result["executionArn"])
        waited, who = pending.longest()
        after = realistic.state()
        new_nodes = [
            n
            for n in sb.store.all("nodes")
            if n["metadata"]["labels"].get(LABEL_INSTANCE_TYPE_STABLE) == "c5.large"
        ]
        cache_ready = len([p for p in sb.pods("shop", "app=cache") if pod_is_ready(p)])
        # Positive controls, same clock. (1) Room that comes only from a boot: two more 2 GiB
        # pods find every c5.large full and wait until the nodes added for them are Ready.
        sb.apply(m.deployment("late", "shop", 2, requests={"cpu": "100m", "memory": "2Gi"}, **WORKERS))
        realistic.scenario.add_nodes(per_zone=1, timeout=boot_s * 2 + 10)
        sb.wait_for(
            lambda: [bool(p["spec"].get("nodeName")) for p in sb.pods("shop", "app=late")] == [True, True],
            timeout=10,
            what="late pods bound",
        )
        late, late_who = pending.longest("shop/late")
        # (2) A pod no new node can hold waits past a boot
        sb.apply(m.deployment("too-big", "shop", 1, requests={"cpu": "100m", "memory": "6Gi"}, **WORKERS))
        time.sleep(boot_s + 1.0)
        control, control_who = pending.longest("shop/too-big")
    monitor.stop()
    roll_s = (result["stopDate"] - result["startDate"]).total_seconds()
    print(
        f"realistic (factor {FACTOR}): roll {roll_s / FACTOR:.0f}s real ({roll_s:.1f}s wall); longest Pending "
        f"{waited / FACTOR:.2f}s real ({1000 * waited:.1f} ms wall, {who}); boot {boot_real_s:.0f}s real "
        f"({boot_s:.2f}s wall); waiting for a boot {late / FACTOR:.0f}s real ({late_who}); "
        f"unschedulable {control / FACTOR:.0f}s real ({control_who})"
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
    assert len(after.instances) == 12 and len(new_nodes) == 12, (len(after.instances), len(new_nodes))
    assert waited <= boot_s, (waited, who)
    assert monitor.violations == 0
    assert cache_ready == 12
    assert before.desired == 6 and after.desired == 12
    assert control > boot_s and control_who.startswith("shop/too-big"), (control, control_who)
    # Room from a boot takes at least the fastest boot the profile's jitter allows
    assert late >= (1 - REALISTIC.jitter) * boot_s and late_who.startswith("shop/late"), (late, late_who)
