"""Eviction of one incarnation of a pod: a StatefulSet pod keeps its name when it is recreated, so
the Redis steps evict by uid and must never evict the replacement of the pod they meant."""

from __future__ import annotations

from eks_rolling.k8s.ops import KubeOps
from eks_rolling_sandbox.sandbox import Sandbox
from tests.integration.k8s.test_ops import _deploy


def test_eviction_with_a_stale_uid_is_gone_and_leaves_the_replacement_alone(
    sb: Sandbox,
    kube: KubeOps,
) -> None:
    # Given a pod whose uid the caller remembers, then replaced under the same name (a bare
    # copy of a Deployment's pod, labels and owner dropped: no controller adopts or races it)
    (raw,) = _deploy(sb, "db", 1)
    md = {
        k: v
        for k, v in raw["metadata"].items()
        if k not in ("ownerReferences", "uid", "resourceVersion", "labels", "generateName")
    }
    body = {**raw, "metadata": {**md, "name": "db-solo", "labels": {"app": "db-solo"}}}
    old_uid = sb.store.create("pods", body)["metadata"]["uid"]
    pod = kube.get_pod("default", "db-solo")
    sb.store.delete("pods", "default", "db-solo")
    new_uid = sb.store.create("pods", body)["metadata"]["uid"]
    assert new_uid != old_uid
    # When it is evicted by the remembered uid
    out = kube.evict(pod, uid=old_uid)
    # Then the answer is "gone" and the replacement is untouched
    assert out.status == "gone" and old_uid in out.detail
    now = sb.store.get("pods", "default", "db-solo")
    assert (
        now is not None and now["metadata"]["uid"] == new_uid and "deletionTimestamp" not in now["metadata"]
    )
    # ... while the current incarnation, named by its uid, is evicted
    assert kube.evict(kube.get_pod("default", "db-solo"), uid=new_uid).status == "evicted"
