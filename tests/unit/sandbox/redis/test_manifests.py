"""The Redis manifests carry the contract the runtime and eks-rolling read (pure, no processes)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from eks_rolling.labels import (
    LABEL_HOSTNAME,
    LABEL_TOPOLOGY_ZONE,
    REDIS_GROUP,
    REDIS_KIND,
    REDIS_MASTER_SET,
    REDIS_PASSWORD_SECRET,
    REDIS_ROLE,
    REDIS_SENTINEL_STATEFULSET,
)
from eks_rolling_sandbox.redis.manifests import _plan_cluster, redis_cluster, sentinel_group
from eks_rolling_sandbox.redis.runtime import PROCESS_ANNOTATION


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def env_of(sts: dict[str, Any]) -> dict[str, Any]:
    container = sts["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_sentinel_group_manifests() -> None:
    manifests = sentinel_group(password="s3cret", master_zone="us-east-1a", replica_zone="us-east-1b")

    assert "Namespace" not in {m["kind"] for m in manifests}
    assert "PodDisruptionBudget" not in {m["kind"] for m in manifests}, "no PDB unless asked"
    secret = by_kind(manifests, "Secret")["redis-auth"]
    assert base64.b64decode(secret["data"]["redis-password"]).decode() == "s3cret"
    services = by_kind(manifests, "Service")
    assert set(services) == {"redis-master", "redis-replica", "redis-sentinel"}
    assert all(
        s["spec"]["clusterIP"] == "None" and s["spec"]["publishNotReadyAddresses"] for s in services.values()
    )
    sets = by_kind(manifests, "StatefulSet")
    for name, role, process in (
        ("redis-master", "master", "redis"),
        ("redis-replica", "replica", "redis"),
        ("redis-sentinel", "sentinel", "sentinel"),
    ):
        sts = sets[name]
        ann = sts["metadata"]["annotations"]
        assert ann == {
            REDIS_GROUP: "redis",
            REDIS_KIND: "sentinel",
            REDIS_ROLE: role,
            REDIS_MASTER_SET: "mymaster",
            REDIS_SENTINEL_STATEFULSET: "redis-sentinel",
            REDIS_PASSWORD_SECRET: "redis-auth/redis-password",
        }
        assert sts["spec"]["template"]["metadata"]["annotations"] == {PROCESS_ANNOTATION: process}
        env = env_of(sts)
        assert env["REDIS_MASTER_HOST"] == "redis-master" and env["REDIS_SENTINEL_HOST"] == "redis-sentinel"
        assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis-auth", "key": "redis-password"}}
        anti = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == LABEL_HOSTNAME
    assert sets["redis-master"]["spec"]["replicas"] == 1 and sets["redis-replica"]["spec"]["replicas"] == 2
    assert env_of(sets["redis-master"])["REDIS_ROLE"] == "master"
    assert env_of(sets["redis-replica"])["REDIS_ROLE"] == "replica"
    assert [c["metadata"]["name"] for c in sets["redis-master"]["spec"]["volumeClaimTemplates"]] == ["data"]
    assert "volumeClaimTemplates" not in sets["redis-sentinel"]["spec"]
    assert sets["redis-sentinel"]["spec"]["template"]["spec"]["volumes"] == [
        {"name": "sentinel-conf", "emptyDir": {}}
    ]


def test_sentinel_group_options() -> None:
    manifests = sentinel_group(password_secret=None, pdb_max_unavailable=1, create_namespace=True)

    assert manifests[0]["kind"] == "Namespace"
    assert "Secret" not in {m["kind"] for m in manifests}
    assert len(by_kind(manifests, "PodDisruptionBudget")) == 3
    for sts in by_kind(manifests, "StatefulSet").values():
        assert "REDIS_PASSWORD" not in env_of(sts)
        assert REDIS_PASSWORD_SECRET not in sts["metadata"]["annotations"]


def test_redis_cluster_manifests() -> None:
    manifests = redis_cluster(announce_ip=True, password_secret="rc-auth")

    sets = by_kind(manifests, "StatefulSet")
    assert set(sets) == {"redis-cluster-a", "redis-cluster-b"}
    for name, zone in (("redis-cluster-a", "us-east-1a"), ("redis-cluster-b", "us-east-1b")):
        sts = sets[name]
        assert sts["metadata"]["annotations"][REDIS_GROUP] == "redis-cluster"
        assert sts["metadata"]["annotations"][REDIS_KIND] == "cluster"
        terms = sts["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {"matchExpressions": [{"key": LABEL_TOPOLOGY_ZONE, "operator": "In", "values": [zone]}]}
        ]
        assert sts["spec"]["replicas"] == 3 and sts["spec"]["serviceName"] == "redis-cluster-headless"
        assert env_of(sts)["REDIS_CLUSTER_ANNOUNCE_IP"] == "true"
    assert env_of(sets["redis-cluster-a"])["REDIS_PASSWORD"]["secretKeyRef"]["name"] == "rc-auth"


@pytest.mark.parametrize(
    ("by_zone", "masters"),
    [
        ([["a0", "a1", "a2"], ["b0", "b1", "b2"]], ["a0", "b0", "a1"]),
        ([["a0", "a1", "a2"], ["b0", "b1", "b2"], ["c0", "c1", "c2"]], ["a0", "b0", "c0", "a1"]),
        ([["a0"], ["b0"]], ["a0"]),
    ],
)
def test_cluster_plan_puts_every_replica_in_another_zone(
    by_zone: list[list[str]], masters: list[str]
) -> None:
    planned, replicas = _plan_cluster(by_zone)

    assert planned == masters
    assert sorted(planned + replicas) == sorted(p for z in by_zone for p in z)
    for k, replica in enumerate(replicas):
        assert replica[0] != planned[k % len(planned)][0]  # first letter = zone
