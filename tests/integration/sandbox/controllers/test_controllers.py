"""Controllers: scheduler, ReplicaSet/Deployment, StatefulSet, DaemonSet, node lifecycle, PodGC and
endpoints — the behaviours a node rotation leans on, each as the upstream controller does it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from eks_rolling.labels import LABEL_HOSTNAME, LABEL_TOPOLOGY_ZONE, TAINT_NODE_UNSCHEDULABLE
from eks_rolling_sandbox.api.objects import controller_of
from eks_rolling_sandbox.sandbox import Sandbox
from tests.factories import k8s as b

RETIRING = b.taint("rotation.example.com/retiring", "run-1")


def _node_of(sb: Sandbox, name: str, ns: str = "default") -> str | None:
    pod = sb.store.get("pods", ns, name)
    return pod["spec"].get("nodeName") if pod else None


def _scheduled_message(sb: Sandbox, name: str) -> str:
    pod = sb.store.get("pods", "default", name)
    assert pod is not None, f"{name} not (re)created yet"  # an assertion: eventually() retries it
    cond = next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)
    assert cond is not None and cond["status"] == "False", pod["status"]
    return str(cond["message"])


def _unschedulable(sb: Sandbox, name: str, *fragments: str, timeout: float = 5.0) -> str:
    def check() -> str:
        msg = _scheduled_message(sb, name)
        for f in fragments:
            assert f in msg, msg
        return msg

    return b.eventually(check, timeout=timeout)


def _quiet_for(sb: Sandbox, seconds: float, check: Callable[[], None]) -> None:
    """Assert `check` holds for a while (the absence of an action is only observable over time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(0.05)
    sb.settle()
    check()


class PodEvents:
    """Record (type, uid, controller kind) of every watch event for one pod name, in a thread."""

    def __init__(
        self, sb: Sandbox, name: str, ns: str = "default", *, until: Callable[[str, Any], bool]
    ) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        core = client.CoreV1Api(sb.client())
        self._ready = threading.Event()

        def run() -> None:
            for ev in watch.Watch().stream(
                core.list_namespaced_pod, ns, field_selector=f"metadata.name={name}", timeout_seconds=8
            ):
                refs = [r.kind for r in ev["object"].metadata.owner_references or [] if r.controller]
                self.seen.append((ev["type"], ev["object"].metadata.uid, refs[0] if refs else None))
                if until(ev["type"], ev["object"]):
                    return

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        # The watch is registered once the server logged it.
        sb.wait_for(
            lambda: any("watch=true" in e.query and name in e.query for e in sb.request_log.entries()),
            timeout=5,
            what="watch registered",
        )

    def join(self) -> list[tuple[str, str, str | None]]:
        self._thread.join(timeout=9)
        assert not self._thread.is_alive(), self.seen
        return self.seen


# --- scheduler -----------------------------------------------------------------------------------
def test_scheduler_keeps_pods_off_untolerated_noschedule_taints(sb: Sandbox) -> None:
    """TaintToleration filter (pkg/scheduler/framework/plugins/tainttoleration)."""
    # Given a retiring node (custom NoSchedule taint) and a clean one
    old = b.make_ready_node(sb, 1, taints=[RETIRING])
    new = b.make_ready_node(sb, 2)
    # When a Deployment is created
    sb.apply(b.deployment("web", 4))
    pods = b.wait_ready(sb, 4)
    # Then every pod lands on the clean node
    assert {p["spec"]["nodeName"] for p in pods} == {new}
    # ...a pod pinned to the retiring node without a toleration stays Pending, saying why
    sb.apply(b.pod("pinned", nodeSelector={LABEL_HOSTNAME: old}))
    _unschedulable(
        sb,
        "pinned",
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {rotation.example.com/retiring: run-1}.",
    )
    # ...and an `operator: Exists` toleration with an empty key tolerates everything
    sb.apply(b.pod("tolerant", nodeSelector={LABEL_HOSTNAME: old}, tolerations=[{"operator": "Exists"}]))
    sb.wait_for(lambda: _node_of(sb, "tolerant") == old, timeout=5, what="tolerant pod on the retiring node")


def test_scheduler_honours_node_selector_and_required_zone_affinity(sb: Sandbox) -> None:
    """NodeAffinity filter: nodeSelector and requiredDuringScheduling nodeSelectorTerms."""
    nodes = {az: b.make_ready_node(sb, k, az) for k, az in enumerate(b.AZS, start=1)}
    sb.apply(b.pod("by-selector", nodeSelector={LABEL_TOPOLOGY_ZONE: b.AZS[1]}))
    sb.apply(b.pod("by-affinity", affinity=b.zone_affinity(b.AZS[2])))
    sb.apply(b.pod("nowhere", affinity=b.zone_affinity("eu-west-1a")))
    sb.wait_for(lambda: _node_of(sb, "by-selector") == nodes[b.AZS[1]], timeout=5, what="selector")
    sb.wait_for(lambda: _node_of(sb, "by-affinity") == nodes[b.AZS[2]], timeout=5, what="affinity")
    _unschedulable(
        sb, "nowhere", "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    )


def test_not_ready_nodes_are_not_used(sb: Sandbox) -> None:
    """Not-ready nodes carry node.kubernetes.io/not-ready:NoSchedule (TaintNodesByCondition)."""
    # Given only a registered-but-NotReady node
    booting = b.add_node(sb, 1, ready=False)
    sb.apply(b.pod("early"))
    # Then the pod waits, blocked by the not-ready taint
    _unschedulable(sb, "early", "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }")
    # When the node turns Ready, the lifecycle controller lifts the taint and the pod schedules
    b.set_node_ready(sb, booting)
    sb.wait_for(lambda: _node_of(sb, "early") == booting, timeout=5, what="scheduled after Ready")


def test_pv_zone_conflict_leaves_the_pod_pending_with_an_event(sb: Sandbox) -> None:
    """VolumeBinding filter: a bound EBS volume pins its pod to the volume's zone."""
    # Given a StatefulSet pod whose volume was provisioned in zone a
    zone_a = b.make_ready_node(sb, 1, b.AZS[0])
    sb.apply(b.statefulset("db", 1))
    b.wait_ready(sb, 1, selector="app=db")
    pvc = sb.store.require("persistentvolumeclaims", "default", "data-db-0")
    pv = sb.store.require("persistentvolumes", None, pvc["spec"]["volumeName"])
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0][
        "values"
    ] == [b.AZS[0]]
    # ...its node retiring, and the only clean node in another zone
    sb.registry.patch(
        "nodes", None, zone_a, "application/strategic-merge-patch+json", {"spec": {"taints": [RETIRING]}}
    )
    b.make_ready_node(sb, 2, b.AZS[1])
    # When the pod is deleted
    sb.registry.delete("pods", "default", "db-0")
    # Then it comes back Pending, with the scheduler's reasons and a FailedScheduling event
    msg = _unschedulable(
        sb,
        "db-0",
        "0/2 nodes are available: 1 node(s) had untolerated taint {rotation.example.com/retiring: run-1}, "
        "1 node(s) had volume node affinity conflict.",
    )
    pod = sb.store.require("pods", "default", "db-0")
    events = [e for e in sb.store.all("events") if e["involvedObject"].get("uid") == pod["metadata"]["uid"]]
    assert any(
        e["reason"] == "FailedScheduling" and e["type"] == "Warning" and e["message"] == msg for e in events
    )
    # ...until a clean node appears in the volume's zone
    zone_a_new = b.make_ready_node(sb, 3, b.AZS[0])
    sb.wait_for(lambda: _node_of(sb, "db-0") == zone_a_new, timeout=5, what="db-0 on the new zone-a node")


# --- ReplicaSet / Deployment ---------------------------------------------------------------------
def test_replicaset_replaces_an_evicted_pod_while_it_is_still_terminating(make_sandbox: Any) -> None:
    """Terminating pods are not active (controller.FilterActivePods): the replacement is immediate."""
    sb = make_sandbox(pod_exit_s=30.0)
    b.make_ready_node(sb, 1)
    b.make_ready_node(sb, 2)
    sb.apply(b.deployment("web", 2))
    victim = b.wait_ready(sb, 2)[0]["metadata"]["name"]
    # When a pod is evicted
    core = client.CoreV1Api(sb.client())
    core.create_namespaced_pod_eviction(
        victim, "default", client.V1Eviction(metadata=client.V1ObjectMeta(name=victim))
    )
    # Then a replacement runs Ready while the evicted pod is still Terminating
    ready = b.wait_ready(sb, 2, selector="app=web", timeout=5)
    assert victim not in {p["metadata"]["name"] for p in ready}
    old = sb.store.get("pods", "default", victim)
    assert old is not None and "deletionTimestamp" in old["metadata"]


def test_replicaset_adopts_a_matching_orphan_and_deletes_the_excess(sb: Sandbox) -> None:
    """ClaimPods adopts orphans matching the selector (pkg/controller/controller_ref_manager.go);
    the ReplicaSet then has one pod too many and deletes one."""
    b.make_ready_node(sb, 1)
    sb.apply(b.deployment("web", 2))
    b.wait_ready(sb, 2)
    rs = sb.store.all("replicasets")[0]
    labels = dict(rs["spec"]["template"]["metadata"]["labels"])  # includes pod-template-hash
    events = PodEvents(sb, "orphan", until=lambda t, o: t == "DELETED")
    # When a bare pod carrying the template's labels is created
    sb.apply(b.pod("orphan", labels=labels))
    # Then it is adopted by the ReplicaSet (and, being the least useful pod, deleted as the excess)
    seen = events.join()
    assert ("MODIFIED", seen[0][1], "ReplicaSet") in seen, seen
    assert seen[-1][0] == "DELETED"
    # ...and the ReplicaSet settles back at 2 pods
    b.eventually(lambda: _assert_len(b.ready_pods(sb, selector="app=web"), 2), timeout=5)
    sb.settle()
    assert len([p for p in sb.pods("default", "app=web") if "deletionTimestamp" not in p["metadata"]]) == 2


def _assert_len(items: list[Any], n: int) -> None:
    assert len(items) == n, [i["metadata"]["name"] for i in items]


def test_deployment_scaled_through_the_scale_subresource(sb: Sandbox, apps: client.AppsV1Api) -> None:
    """What the tool does to the cluster-autoscaler: PATCH deployments/{name}/scale to 0 and back."""
    b.make_ready_node(sb, 1)
    sb.apply(b.deployment("cluster-autoscaler", 1, namespace="kube-system"))
    b.wait_ready(sb, 1, "kube-system")
    gen = apps.read_namespaced_deployment("cluster-autoscaler", "kube-system").metadata.generation
    # When scaled to 0
    scale = apps.patch_namespaced_deployment_scale(
        "cluster-autoscaler", "kube-system", {"spec": {"replicas": 0}}
    )
    assert scale.spec.replicas == 0
    assert sb.request_log.entries()[-1].content_type == "application/strategic-merge-patch+json"
    # Then the spec changed (generation bumped) and the pods go
    dep = apps.read_namespaced_deployment("cluster-autoscaler", "kube-system")
    assert (dep.spec.replicas, dep.metadata.generation) == (0, gen + 1)
    sb.wait_for(lambda: not sb.pods("kube-system"), timeout=5, what="autoscaler pods gone")
    # When scaled back to 1, it is Ready again, and status says so
    apps.patch_namespaced_deployment_scale("cluster-autoscaler", "kube-system", {"spec": {"replicas": 1}})
    b.wait_ready(sb, 1, "kube-system")

    def status_ok() -> None:
        d = apps.read_namespaced_deployment("cluster-autoscaler", "kube-system")
        st = d.status
        assert (st.replicas, st.ready_replicas, st.available_replicas, st.updated_replicas) == (1, 1, 1, 1), (
            st
        )
        assert st.observed_generation == d.metadata.generation
        assert apps.read_namespaced_deployment_scale("cluster-autoscaler", "kube-system").status.replicas == 1

    b.eventually(status_ok, timeout=5)


# --- StatefulSet ---------------------------------------------------------------------------------
def test_statefulset_pod_comes_back_with_same_name_new_uid_ip_same_pvc(make_sandbox: Any) -> None:
    """stateful_set_control.go: a missing ordinal is recreated under the same name, after the old
    object is gone (names are unique); its PVC (getPersistentVolumeClaimName) is reused."""
    sb = make_sandbox(pod_exit_s=0.5)
    b.make_ready_node(sb, 1)
    b.make_ready_node(sb, 2)
    sb.apply(b.statefulset("redis", 2))
    b.wait_ready(sb, 2, selector="app=redis")
    old = sb.store.require("pods", "default", "redis-1")
    uid_old = old["metadata"]["uid"]
    events = PodEvents(sb, "redis-1", until=lambda t, o: t == "ADDED" and o.metadata.uid != uid_old)
    # When the pod is deleted
    client.CoreV1Api(sb.client()).delete_namespaced_pod("redis-1", "default")
    seen = events.join()
    # Then the old object was DELETED before the new one (same name, new UID) was ADDED
    types = [t for t, _, _ in seen]
    assert ("DELETED", uid_old) == seen[types.index("DELETED")][:2], seen
    assert types.index("DELETED") == len(types) - 2 and types[-1] == "ADDED", seen
    assert all(u == uid_old for _, u, _ in seen[:-1]), seen
    new = b.wait_ready(sb, 1, selector="statefulset.kubernetes.io/pod-name=redis-1")[0]
    assert new["metadata"]["uid"] != uid_old
    assert new["status"]["podIP"] != old["status"]["podIP"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in new["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["data-redis-1"]
    assert [v for v in old["spec"]["volumes"] if "persistentVolumeClaim" in v] == [
        v for v in new["spec"]["volumes"] if "persistentVolumeClaim" in v
    ]


def test_ordered_ready_waits_for_lower_ordinals(sb: Sandbox) -> None:
    """OrderedReady (stateful_set_control.go): a missing pod-2 is not recreated while pod-0 is not
    Running and Ready."""
    for k in (1, 2, 3):
        b.make_ready_node(sb, k, b.AZS[k - 1])
    sb.apply(b.statefulset("redis", 3))
    b.wait_ready(sb, 3, selector="app=redis", timeout=10)
    node0, node2 = _node_of(sb, "redis-0"), _node_of(sb, "redis-2")
    assert node0 and node2 and node0 != node2
    # Given redis-0 is not ready (its node stopped reporting Ready)
    b.set_node_ready(sb, node0, "False")
    sb.wait_for(
        lambda: not b.pod_ready(sb.store.require("pods", "default", "redis-0")),
        timeout=5,
        what="redis-0 unready",
    )
    # When redis-2 is deleted
    sb.registry.delete("pods", "default", "redis-2")
    sb.wait_for(lambda: sb.store.get("pods", "default", "redis-2") is None, timeout=5, what="redis-2 gone")
    # Then it is not recreated while redis-0 is unready...
    _quiet_for(sb, 0.5, lambda: _assert_absent(sb, "redis-2"))
    # ...and is once redis-0 is Ready again
    b.set_node_ready(sb, node0)
    b.wait_ready(sb, 3, selector="app=redis", timeout=10)


def _assert_absent(sb: Sandbox, name: str) -> None:
    assert sb.store.get("pods", "default", name) is None, f"{name} was recreated"


def test_statefulset_adopts_and_condemns_a_temp_pod_named_like_an_ordinal(sb: Sandbox) -> None:
    """getPodsForStatefulSet adopts orphans that match the selector and parse as <sts>-<ordinal>
    (isMemberOf, regex (.*)-([0-9]+)$); ordinal >= replicas is condemned and deleted."""
    b.make_ready_node(sb, 1)
    sts = b.statefulset("redis", 1)
    sb.apply(sts)
    b.wait_ready(sb, 1, selector="app=redis")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    spec = {**sts["spec"]["template"]["spec"], "volumes": [{"name": "data", "emptyDir": {}}]}
    events = PodEvents(sb, "redis-99", until=lambda t, o: t == "DELETED")
    # When two temporary pods with the template's labels are created
    sb.apply(b.pod("redis-99", labels=labels, spec=spec))
    sb.apply(b.pod("redis-tmp-x", labels=labels, spec=spec))
    # Then redis-99 is adopted by the StatefulSet and deleted...
    seen = events.join()
    assert any(kind == "StatefulSet" for _, _, kind in seen), seen
    assert seen[-1][0] == "DELETED"
    # ...and redis-tmp-x is left alone, unowned
    b.wait_ready(sb, 2, selector="app=redis")
    tmp = sb.store.require("pods", "default", "redis-tmp-x")
    assert controller_of(tmp) is None


# --- DaemonSet -----------------------------------------------------------------------------------
def test_daemonset_pod_not_recreated_under_untolerated_custom_taint(sb: Sandbox) -> None:
    """NodeShouldRunDaemonPod (pkg/controller/daemon): an untolerated NoSchedule taint means a
    running daemon pod may stay, but a missing one is not created; tolerating DaemonSets do."""
    node = b.make_ready_node(sb, 1)
    sb.apply(b.daemonset("agent"))
    sb.apply(b.daemonset("tolerant", tolerations=[{"key": RETIRING["key"], "operator": "Exists"}]))
    b.wait_ready(sb, 2, "kube-system")
    # Given the node is retiring
    sb.registry.patch(
        "nodes", None, node, "application/strategic-merge-patch+json", {"spec": {"taints": [RETIRING]}}
    )
    sb.settle()
    # Then the running daemon pods keep running
    agent = b.ready_pods(sb, "kube-system", "app=agent")
    assert len(agent) == 1
    # When both daemon pods are deleted
    for p in sb.pods("kube-system"):
        sb.registry.delete("pods", "kube-system", p["metadata"]["name"])
    # Then only the DaemonSet that tolerates the taint gets a pod back
    b.wait_ready(sb, 1, "kube-system", "app=tolerant")
    _quiet_for(sb, 0.5, lambda: _assert_len(sb.pods("kube-system", "app=agent"), 0))


def test_cordon_taints_the_node_and_daemonsets_tolerate_it(sb: Sandbox, core: client.CoreV1Api) -> None:
    """spec.unschedulable -> node.kubernetes.io/unschedulable:NoSchedule (node lifecycle
    controller, TaintNodesByCondition); DaemonSets auto-tolerate it (daemon/util AddOrUpdateDaemonPodTolerations)."""
    node = b.make_ready_node(sb, 1)
    sb.apply(b.daemonset("agent"))
    b.wait_ready(sb, 1, "kube-system")
    # When the node is cordoned, as kubectl does
    core.patch_node(node, {"spec": {"unschedulable": True}})
    # Then the lifecycle controller adds the unschedulable taint
    b.eventually(lambda: _assert_taint(core, node, TAINT_NODE_UNSCHEDULABLE))
    # ...new pods stay off it
    sb.apply(b.pod("web"))
    _unschedulable(sb, "web", "0/1 nodes are available: 1 node(s) were unschedulable.")
    # ...but a deleted daemon pod is recreated there
    old = sb.pods("kube-system")[0]["metadata"]["name"]
    sb.registry.delete("pods", "kube-system", old)
    b.eventually(
        lambda: _assert_len([p for p in b.ready_pods(sb, "kube-system") if p["metadata"]["name"] != old], 1)
    )
    # When uncordoned, the taint goes and the pod schedules
    core.patch_node(node, {"spec": {"unschedulable": None}})
    sb.wait_for(lambda: _node_of(sb, "web") == node, timeout=5, what="scheduled after uncordon")
    assert TAINT_NODE_UNSCHEDULABLE not in [t.key for t in core.read_node(node).spec.taints or []]


def _assert_taint(core: client.CoreV1Api, node: str, key: str) -> None:
    taints = [(t.key, t.effect) for t in core.read_node(node).spec.taints or []]
    assert (key, "NoSchedule") in taints, taints


# --- node lifecycle and PodGC --------------------------------------------------------------------
def test_node_deletion_lets_podgc_remove_its_pods(make_sandbox: Any) -> None:
    """PodGC (pkg/controller/podgc gcOrphaned): pods bound to a node that no longer exists are
    force-deleted — even those stuck Terminating on the dead node."""
    sb = make_sandbox(pod_exit_s=30.0)
    old = b.make_ready_node(sb, 1)
    sb.apply(b.deployment("web", 2))
    b.wait_ready(sb, 2)
    new = b.make_ready_node(sb, 2, taints=[])
    # Given the old instance died: its node went NotReady and a pod is stuck Terminating there
    b.set_node_ready(sb, old, "False")
    victim = sb.pods("default")[0]["metadata"]["name"]
    sb.registry.delete("pods", "default", victim)
    _quiet_for(sb, 0.3, lambda: _assert_terminating(sb, victim))
    # When the node object is deleted
    sb.registry.delete("nodes", None, old)
    # Then no pod is bound to it any more, and the Deployment is whole again on the new node
    sb.wait_for(
        lambda: not [p for p in sb.pods("default") if p["spec"].get("nodeName") == old],
        timeout=5,
        what="podgc",
    )
    assert {p["spec"]["nodeName"] for p in b.wait_ready(sb, 2)} == {new}


def _assert_terminating(sb: Sandbox, name: str) -> None:
    pod = sb.store.get("pods", "default", name)
    assert pod is not None and "deletionTimestamp" in pod["metadata"]


# --- endpoints -----------------------------------------------------------------------------------
def test_endpoints_split_ready_and_not_ready_addresses(make_sandbox: Any) -> None:
    """Endpoints controller: Ready pods in addresses, unready in notReadyAddresses, terminating and
    finished pods left out (ShouldPodBeInEndpoints); the EndpointSlice keeps the terminating pod
    with ready=false, terminating=true."""
    sb = make_sandbox(pod_exit_s=30.0)
    b.make_ready_node(sb, 1)
    sb.apply(b.service("web"))
    sb.apply(b.deployment("web", 3))
    sb.apply(b.pod("web-unready", labels={"app": "web"}, readinessGates=b.never_ready_gate()))
    pods = b.wait_ready(sb, 3)
    leaving = pods[0]
    sb.registry.delete("pods", "default", leaving["metadata"]["name"])
    sb.wait_for(lambda: len(b.ready_pods(sb)) == 3, timeout=5, what="replacement ready")
    sb.settle()
    by_ip = {
        p["status"]["podIP"]: p["metadata"]["name"] for p in sb.pods("default") if p["status"].get("podIP")
    }

    def check() -> None:
        core = client.CoreV1Api(sb.client())
        ep = core.read_namespaced_endpoints("web", "default")
        ready = {by_ip[a.ip] for a in ep.subsets[0].addresses or []}
        not_ready = {by_ip[a.ip] for a in ep.subsets[0].not_ready_addresses or []}
        assert ready == {p["metadata"]["name"] for p in b.ready_pods(sb)}
        assert not_ready == {"web-unready"}
        slices = client.DiscoveryV1Api(sb.client()).list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=web"
        )
        conds = {by_ip[e.addresses[0]]: e.conditions for sl in slices.items for e in sl.endpoints}
        gone = conds[leaving["metadata"]["name"]]
        assert (gone.ready, gone.serving, gone.terminating) == (False, True, True)
        assert conds["web-unready"].ready is False and conds["web-unready"].terminating is False

    b.eventually(check, timeout=5)
