"""Owners of kinds we do not know (an Argo Rollout's ReplicaSet, a Job), against the sandbox API:
after an eviction they count as recovered only when their pods are back, never at once."""

from __future__ import annotations

from typing import Any

from eks_rolling.k8s.ops import ControllerMemo, KubeOps
from eks_rolling.planning.owners import counted_before
from eks_rolling.planning.snapshot import OwnerRef
from eks_rolling.redis.discovery import RedisGroup
from eks_rolling.services.redis import _moves_on_node
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import pod_is_ready
from eks_rolling_sandbox.sandbox import Sandbox


def _controller(kind: str, api_version: str, name: str, uid: str) -> list[dict[str, Any]]:
    return [{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}]


def test_a_rollouts_pods_count_as_recovered_only_once_back_and_ready(sb: Sandbox, kube: KubeOps) -> None:
    # Given an Argo Rollout's ReplicaSet (the Rollout itself is a custom resource) with 2 Ready pods
    rs = m.deployment("web", "default", 2)
    rs["kind"] = "ReplicaSet"
    rs["metadata"]["ownerReferences"] = _controller("Rollout", "argoproj.io/v1alpha1", "web", "rollout-uid")
    sb.apply(rs)
    sb.wait_for(
        lambda: len([p for p in sb.pods("default", "app=web") if pod_is_ready(p)]) == 2, what="web ready"
    )
    owner = OwnerRef("Rollout", "default", "web")
    pod = kube.get_pod("default", sb.pods("default", "app=web")[0]["metadata"]["name"])
    assert kube.owner_of(pod) == owner
    before = counted_before(owner.kind, kube.owner_pods(owner))
    assert before == 2
    # When one pod is evicted
    assert kube.evict(pod).status == "evicted"
    # Then the Rollout is not recovered at once
    ok, why = kube.workload_ready(owner, before)
    assert not ok, why
    assert "/2 pods ready" in why
    # ... and is once its ReplicaSet has a replacement Ready
    sb.wait_for(lambda: kube.workload_ready(owner, before)[0], what="rollout recovered")


def test_a_job_recovers_when_it_completes(sb: Sandbox, kube: KubeOps) -> None:
    # Given a Job (no controller runs it here) with one running pod
    job = sb.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "report", "namespace": "default"},
            "spec": {"template": m.pod_template({"job": "report"}, restartPolicy="Never")},
        }
    )
    sb.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "report-1",
                "namespace": "default",
                "labels": {"job": "report"},
                "ownerReferences": _controller("Job", "batch/v1", "report", job["metadata"]["uid"]),
            },
            "spec": {"containers": [{"name": "main", "image": "busybox"}], "restartPolicy": "Never"},
        }
    )
    sb.wait_for(lambda: pod_is_ready(sb.store.get("pods", "default", "report-1")), what="job pod running")
    owner = OwnerRef("Job", "default", "report")
    before = counted_before("Job", kube.owner_pods(owner))
    assert before == 1
    # When its pod is evicted, Then the Job is not recovered: nothing runs it and it is not complete
    assert kube.evict(kube.get_pod("default", "report-1")).status == "evicted"
    ok, why = kube.workload_ready(owner, before)
    assert not ok and why == "Job default/report: 0/1 pods running (Job not complete)"

    # When the Job completes, Then it is recovered
    def complete(cur: dict[str, Any]) -> dict[str, Any]:
        cur.setdefault("status", {})["conditions"] = [{"type": "Complete", "status": "True"}]
        return cur

    sb.store.mutate("jobs", "default", "report", complete)
    assert kube.workload_ready(owner, before) == (True, "Job default/report: complete")
    # ... and a Job deleted meanwhile has nothing left to wait for
    sb.registry.delete("jobs", "default", "report", {})
    assert kube.workload_ready(owner, before) == (True, "Job default/report no longer exists")


def test_finding_redis_pods_on_a_node_reads_no_replicaset(sb: Sandbox, kube: KubeOps) -> None:
    # Given a Deployment's pods and one pod of a managed Redis group's StatefulSet on node-1
    sb.apply(m.deployment("web", "default", 4))
    sb.wait_for(lambda: len(sb.pods("default", "app=web")) == 4, what="web pods")
    sb.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "redis-0",
                "namespace": "default",
                "ownerReferences": _controller("StatefulSet", "apps/v1", "redis", "sts-uid"),
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "redis", "image": "redis"}]},
        }
    )
    group = RedisGroup("default", "cache", "sentinel", {"redis": "master"})
    stateless = [p for p in sb.pods("default", "app=web") if p["spec"].get("nodeName") == "node-1"]
    assert stateless, "no web pod landed on node-1"

    def replicaset_gets(since: float) -> int:
        return sum(
            1 for e in sb.request_log.entries(since) if e.method == "GET" and "/replicasets/" in e.path
        )

    # When MoveRedisPods looks for the node's Redis pods
    mark = sb.request_log.mark()
    moves = _moves_on_node(kube, "node-1", [group])
    # Then it finds the Redis pod and reads no ReplicaSet of the stateless ones
    assert [(mv.pod, mv.statefulset, mv.role) for mv in moves] == [("redis-0", "redis", "master")]
    assert replicaset_gets(mark) == 0
    # ... (control: resolving those pods' owners reads their ReplicaSet)
    mark = sb.request_log.mark()
    kube.owner_of(kube.get_pod("default", stateless[0]["metadata"]["name"]))
    assert replicaset_gets(mark) == 1


def test_a_replicasets_controller_is_read_once_per_lambda_container(sb: Sandbox, kube: KubeOps) -> None:
    # Given a Deployment's pod whose owner one invocation resolved
    sb.apply(m.deployment("api", "default", 1))
    sb.wait_for(lambda: len(sb.pods("default", "app=api")) == 1, what="api pod")
    pod = kube.get_pod("default", sb.pods("default", "app=api")[0]["metadata"]["name"])
    kube.controllers = ControllerMemo()  # this test's own container memory
    assert kube.owner_of(pod) == OwnerRef("Deployment", "default", "api")

    def replicaset_gets(since: float) -> int:
        return sum(
            1 for e in sb.request_log.entries(since) if e.method == "GET" and "/replicasets/" in e.path
        )

    # When the next invocation (a new KubeOps in the same container) resolves it again
    later = KubeOps(kube.core.api_client, kube.settings)
    later.controllers = kube.controllers
    mark = sb.request_log.mark()
    assert later.owner_of(pod) == OwnerRef("Deployment", "default", "api")
    # Then it reads no ReplicaSet (control: a new container reads it)
    assert replicaset_gets(mark) == 0
    cold = KubeOps(kube.core.api_client, kube.settings)
    cold.controllers = ControllerMemo()
    assert cold.owner_of(pod) == OwnerRef("Deployment", "default", "api")
    assert replicaset_gets(mark) == 1
