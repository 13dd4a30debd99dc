"""NodeResourcesFit in the sandbox's scheduler: nodes report their instance type's allocatable,
pods are fitted by their requests, a pod that fits nowhere stays Pending with the upstream
FailedScheduling event and is retried when room appears."""

from __future__ import annotations

from kubernetes import client

from eks_rolling.planning.resources import cpu_millis, instance_capacity
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b


def _pending_condition(sb: Sandbox, name: str) -> dict[str, str]:
    pod = sb.store.get("pods", "default", name)
    assert pod is not None
    cond = next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)
    assert cond is not None and cond["status"] == "False", pod["status"]
    return dict(cond)


def test_nodes_report_the_allocatable_of_their_instance_type(sb: Sandbox, core: client.CoreV1Api) -> None:
    large = b.make_ready_node(sb, 1)
    xlarge = b.make_ready_node(sb, 2, instance_type="m5.xlarge")
    got = {n.metadata.name: n.status.allocatable for n in core.list_node().items}
    # m5.large: 2 vCPU - 70m, 8 GiB - (11 x 29 + 255 + 100) MiB, 29 pods (eni-max-pods)
    assert got[large] == {
        "cpu": "1930m",
        "memory": "7698432Ki",
        "pods": "29",
        "ephemeral-storage": "76224326324",
    }
    # m5.xlarge: what EKS reports for it (3920m, 15054956Ki plus the kernel's share, 58 pods)
    assert got[xlarge]["cpu"] == "3920m" and got[xlarge]["pods"] == "58"
    cap = instance_capacity("m5.xlarge")
    assert cap is not None and cpu_millis(got[xlarge]["cpu"]) == cap.allocatable.cpu_m


def test_a_pod_that_fits_nowhere_stays_pending_with_failed_scheduling(sb: Sandbox) -> None:
    # Given one m5.large (1930m allocatable) and a Deployment of 3 pods of 800m each
    node = b.make_ready_node(sb, 1)
    sb.apply(b.deployment("big", 3, template_spec=b.sized_spec("800m")))
    b.wait_ready(sb, 2, selector="app=big")
    # Then the third does not fit: Pending, PodScheduled=False/Unschedulable, and the event
    pending = b.eventually(
        lambda: next(p for p in sb.pods("default", "app=big") if not p["spec"].get("nodeName"))
    )
    name = pending["metadata"]["name"]
    msg = b.eventually(lambda: _pending_condition(sb, name))["message"]
    assert msg.startswith("0/1 nodes are available: 1 Insufficient cpu."), msg
    assert _pending_condition(sb, name)["reason"] == "Unschedulable"
    events = [e for e in sb.store.all("events") if e["involvedObject"].get("name") == name]
    assert any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events), events
    assert all(p["spec"].get("nodeName") in (node, None) for p in sb.pods("default", "app=big"))
    # When a node with room joins, the pending pod is retried and scheduled there
    second = b.make_ready_node(sb, 2)
    b.eventually(lambda: _assert_on(sb, name, second))


def test_both_resources_short_are_reasons_and_a_freed_node_takes_the_pod(sb: Sandbox) -> None:
    # Given a node filled by one pod asking for most of its cpu and memory
    b.make_ready_node(sb, 1)
    sb.apply(b.pod("hog", spec=b.sized_spec("1500m", "6Gi")))
    b.wait_ready(sb, 1, selector="app=hog")
    # When a pod asking for 1 cpu and 2Gi arrives, neither fits
    sb.apply(b.pod("late", spec=b.sized_spec("1", "2Gi")))
    msg = b.eventually(lambda: _pending_condition(sb, "late"))["message"]
    assert msg.startswith("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."), msg
    # When the hog is deleted (graceful: it holds its room while terminating, then is gone)
    sb.registry.delete("pods", "default", "hog")
    # Then the pending pod is retried and fits
    b.eventually(lambda: _assert_on(sb, "late", b.node_name(1)))


def test_requests_of_terminating_pods_still_count(make_sandbox: object) -> None:
    # Pods keep their room until their kubelet has stopped them (the scheduler's cache
    # removes a pod on its deletion, not at its deletionTimestamp).
    sb = make_sandbox(pod_exit_s=1.5)  # type: ignore[operator]
    node = b.make_ready_node(sb, 1)
    sb.apply(b.pod("old", spec=b.sized_spec("1500m")))
    b.wait_ready(sb, 1, selector="app=old")
    sb.registry.delete("pods", "default", "old")
    sb.apply(b.pod("next", spec=b.sized_spec("1500m")))
    b.eventually(lambda: _pending_condition(sb, "next"))
    assert sb.store.get("pods", "default", "old") is not None  # still terminating
    b.eventually(lambda: _assert_on(sb, "next", node), timeout=10)


def test_max_pods_of_the_type_is_a_reason(sb: Sandbox) -> None:
    b.make_ready_node(sb, 1, instance_type="t3.medium")  # 17 pods (eni-max-pods)
    sb.apply(b.deployment("many", 18, template_spec=b.sized_spec("10m", "16Mi")))
    b.wait_ready(sb, 17, selector="app=many")
    pending = b.eventually(
        lambda: next(p for p in sb.pods("default", "app=many") if not p["spec"].get("nodeName"))
    )
    msg = b.eventually(lambda: _pending_condition(sb, pending["metadata"]["name"]))["message"]
    assert msg.startswith("0/1 nodes are available: 1 Too many pods."), msg


def _assert_on(sb: Sandbox, name: str, node: str) -> None:
    pod = sb.store.get("pods", "default", name)
    assert pod is not None and pod["spec"].get("nodeName") == node, pod and pod["spec"].get("nodeName")
