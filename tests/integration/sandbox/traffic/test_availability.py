"""The availability monitor behind the demo's `pdb_violations` and `min_ready`: it covers
StatefulSets and Redis groups as well as Deployments, and a failure of its own is counted (and
fails the demo) instead of being logged by the store and reported as zero violations.
Positive controls: each test makes the monitor see a real failure."""

from __future__ import annotations

from eks_rolling.labels import REDIS_GROUP
from eks_rolling_sandbox.sandbox import Sandbox
from eks_rolling_sandbox.traffic.availability import AvailabilityMonitor
from tests.factories import k8s as b


def test_a_statefulset_below_its_pdb_is_a_violation(sb: Sandbox) -> None:
    # Given a 3-pod StatefulSet whose PDB allows no disruption
    b.make_ready_node(sb, 1)
    sb.apply(b.statefulset("db", 3))
    sb.apply(b.pdb("db", min_available=3))
    b.wait_ready(sb, 3, selector="app=db", timeout=20)
    monitor = AvailabilityMonitor(sb.store).start()
    try:
        a = monitor.tracked[("StatefulSet", "default", "db")]
        assert a.min_ready == 3 and a.pdb_min == 3
        # When one of its pods is deleted (not evicted: nothing checks the PDB)
        sb.registry.delete("pods", "default", "db-1", {"gracePeriodSeconds": 0})
        b.wait_ready(sb, 3, selector="app=db", timeout=20)
    finally:
        monitor.stop()
    # Then the monitor saw it drop below the budget, and its report says so
    assert a.min_ready == 2 and monitor.violations >= 1, a
    row = next(r for r in monitor.report() if r["kind"] == "StatefulSet")
    assert row == {
        "kind": "StatefulSet",
        "workload": "default/db",
        "replicas": 3,
        "pdb": "db",
        "pdb_min_available": 3,
        "min_ready": 2,
        "violations": len(a.violations),
    }


def test_a_redis_group_is_tracked_across_its_statefulsets(sb: Sandbox) -> None:
    # Given a Redis group made of two StatefulSets (one per zone), with no PDB of its own
    b.make_ready_node(sb, 1)
    for name in ("cache-a", "cache-b"):
        sts = b.statefulset(name, 2, labels={"app": "cache", "shard": name})
        sts["metadata"]["annotations"] = {REDIS_GROUP: "cache"}
        sb.apply(sts)
    b.wait_ready(sb, 4, selector="app=cache", timeout=30)
    monitor = AvailabilityMonitor(sb.store).start()
    try:
        group = monitor.tracked[("RedisGroup", "default", "cache")]
        assert group.replicas == 4 and group.min_ready == 4 and group.pdb is None
        # When a pod of each StatefulSet goes at the same time
        sb.registry.delete("pods", "default", "cache-a-0", {"gracePeriodSeconds": 0})
        sb.registry.delete("pods", "default", "cache-b-1", {"gracePeriodSeconds": 0})
        b.wait_ready(sb, 4, selector="app=cache", timeout=30)
    finally:
        monitor.stop()
    # Then the group's fewest Ready pods is 2 of 4 (no StatefulSet alone shows that)
    assert group.min_ready == 2 and group.per_node_max_lost == 2


def test_a_failure_of_the_monitor_itself_is_counted(sb: Sandbox) -> None:
    # Given a tracked StatefulSet
    b.make_ready_node(sb, 1)
    sb.apply(b.statefulset("db", 1))
    sb.apply(b.pdb("db", min_available=1))
    b.wait_ready(sb, 1, selector="app=db")
    monitor = AvailabilityMonitor(sb.store).start()
    try:
        # When a pod event arrives that the monitor cannot read (a controller reference with no
        # kind, written past the API's validation as a buggy controller could)
        pod = b.pod("odd", labels={"app": "db"})
        pod["metadata"]["ownerReferences"] = [
            {"apiVersion": "apps/v1", "name": "db", "uid": "u-1", "controller": True}
        ]
        sb.store.create("pods", pod)
    finally:
        monitor.stop()
    # Then it is counted with what went wrong, not swallowed by the store's listener loop
    assert monitor.errors == 1 and "KeyError" in monitor.error_samples[0], monitor.error_samples
