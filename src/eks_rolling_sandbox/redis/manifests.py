"""Manifests for Redis under Sentinel and for Redis Cluster, shaped like the production charts.

Apply them with :func:`apply_all` (or ``sandbox.apply`` one by one) on a Sandbox whose kubelet
runs :class:`~eks_rolling_sandbox.redis.runtime.RedisRuntime`; the pod-spec contract the runtime
reads (annotation and env vars) is documented there.

Sentinel group (field report): StatefulSets ``<name>-master`` (1 pod) and ``<name>-replica``
(N pods), each pod with a ``data`` PVC, and ``<name>-sentinel`` (3 pods, emptyDir); headless
Services ``<name>-master``, ``<name>-replica``, ``<name>-sentinel``. Sentinels monitor the
master Service resolved to an IP at start.

Redis Cluster: one StatefulSet per zone (``<name>-a``, ``<name>-b``) pinned to that zone, each
pod with a ``data`` PVC holding ``nodes.conf``, and one headless Service ``<name>-headless``.
:func:`init_redis_cluster` plays the chart's init job.

Every StatefulSet carries the eks-rolling opt-in annotations (``eks-rolling.io/redis-*``).

Upstream: the Bitnami redis and redis-cluster Helm charts' StatefulSets, Services and Secrets.
"""

from __future__ import annotations

import base64
import secrets
import string
import time
from typing import Any, Protocol

from eks_rolling.labels import (
    LABEL_HOSTNAME,
    LABEL_TOPOLOGY_ZONE,
    REDIS_CLUSTER_BUS_PORT,
    REDIS_GROUP,
    REDIS_KIND,
    REDIS_MASTER_SET,
    REDIS_PASSWORD_SECRET,
    REDIS_PORT,
    REDIS_ROLE,
    REDIS_SENTINEL_PASSWORD_SECRET,
    REDIS_SENTINEL_STATEFULSET,
    REDIS_ZONE,
    SENTINEL_PORT,
)

from ..api.store import Obj
from .procs import cluster_create, cluster_info, cluster_nodes
from .runtime import PROCESS_ANNOTATION, read_secret

ObjList = list[Obj]


class _StoreView(Protocol):
    def get(self, plural: str, namespace: str | None, name: str) -> Obj | None: ...
    def all(self, plural: str) -> ObjList: ...


class SandboxLike(Protocol):
    """What these helpers use of ``cluster.Sandbox``."""

    @property
    def store(self) -> _StoreView: ...
    def apply(self, obj: Obj) -> Obj: ...


PASSWORD_KEY = "redis-password"
IMAGE = "redis:7.0.15"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"


def namespace_manifest(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _secret(namespace: str, name: str, password: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {PASSWORD_KEY: base64.b64encode(password.encode()).decode()},
    }


def _password(password: str | None) -> str:
    # Letters and digits only: the value ends up in redis.conf and in shell-like tools.
    alphabet = string.ascii_letters + string.digits
    return password or "".join(secrets.choice(alphabet) for _ in range(24))


def _headless(namespace: str, name: str, selector: dict[str, str], port: int, port_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "clusterIP": "None",
            # Charts publish not-ready pods on the governing Service so pod DNS exists before the
            # readiness probe passes (peers must find each other to become ready).
            "publishNotReadyAddresses": True,
            "selector": dict(selector),
            "ports": [{"name": port_name, "port": port, "targetPort": port}],
        },
    }


def _pdb(namespace: str, name: str, selector: dict[str, str], max_unavailable: int) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": dict(selector)}},
    }


def _env(name: str, value: str) -> Obj:
    return {"name": name, "value": value}


def _secret_env(name: str, secret: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": PASSWORD_KEY}}}


def _zone_affinity(zone: str | None) -> Obj:
    if zone is None:
        return {}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": LABEL_TOPOLOGY_ZONE, "operator": "In", "values": [zone]}]}
                ]
            }
        }
    }


def _anti_affinity(selector: Obj) -> Obj:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": LABEL_HOSTNAME}
            ]
        }
    }


def _statefulset(
    namespace: str,
    name: str,
    *,
    replicas: int,
    service: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    container: Obj,
    affinity: Obj,
    process: str,
    storage: str | None,
    grace_s: int,
    volumes: list[Obj] | None = None,
) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "serviceName": service,
        "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"labels": dict(labels), "annotations": {PROCESS_ANNOTATION: process}},
            "spec": {
                "terminationGracePeriodSeconds": grace_s,
                "containers": [container],
                **({"affinity": affinity} if affinity else {}),
                **({"volumes": volumes} if volumes else {}),
            },
        },
    }
    if storage is not None:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "gp3",
                    "resources": {"requests": {"storage": storage}},
                },
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": annotations,
        },
        "spec": spec,
    }


def _container(name: str, port: int, port_name: str, env: list[Obj], mounts: list[Obj]) -> Obj:
    return {
        "name": name,
        "image": IMAGE,
        "ports": [{"name": port_name, "containerPort": port}],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        # Documentation only: the sandbox kubelet's readiness is the runtime's real PING.
        "readinessProbe": {
            "exec": {"command": ["redis-cli", "-p", str(port), "ping"]},
            "periodSeconds": 5,
            "timeoutSeconds": 1,
        },
        "volumeMounts": mounts,
    }


def sentinel_group(
    namespace: str = "redis",
    name: str = "redis",
    replicas: int = 2,
    sentinels: int = 3,
    password_secret: str | None = "redis-auth",
    master_zone: str | None = None,
    *,
    replica_zone: str | None = None,
    password: str | None = None,
    master_set: str = "mymaster",
    quorum: int = 2,
    down_after_ms: int = 5000,
    failover_timeout_ms: int = 10000,
    sentinel_auth: bool = False,
    anti_affinity: bool = True,
    pdb_max_unavailable: int | None = None,
    storage: str = "1Gi",
    termination_grace_s: int = 30,
    create_namespace: bool = False,
) -> list[Obj]:
    """Redis master/replica StatefulSets watched by a sentinel StatefulSet (the field report's setup).

    ``password_secret`` None means no auth; otherwise a Secret with key ``redis-password`` holds
    ``password`` (random when None: read it back with ``runtime.read_secret``).
    ``sentinel_auth`` makes the sentinels require the same password (bitnami's default).
    ``anti_affinity`` keeps data pods (master and replicas) on distinct nodes, and sentinels on
    distinct nodes. ``pdb_max_unavailable`` adds one PDB per StatefulSet (none by default: the tool
    must not rely on PDBs for Redis).
    """
    base = {NAME_LABEL: "redis", INSTANCE_LABEL: name}
    master_sts, replica_sts, sentinel_sts = f"{name}-master", f"{name}-replica", f"{name}-sentinel"
    out: list[Obj] = [namespace_manifest(namespace)] if create_namespace else []
    common_env = [
        _env("REDIS_MASTER_SET", master_set),
        _env("REDIS_MASTER_HOST", master_sts),
        _env("REDIS_MASTER_PORT", str(REDIS_PORT)),
        _env("REDIS_SENTINEL_HOST", sentinel_sts),
    ]
    group_annotations = {
        REDIS_GROUP: name,
        REDIS_KIND: "sentinel",
        REDIS_MASTER_SET: master_set,
        REDIS_SENTINEL_STATEFULSET: sentinel_sts,
    }
    if password_secret is not None:
        out.append(_secret(namespace, password_secret, _password(password)))
        common_env.append(_secret_env("REDIS_PASSWORD", password_secret))
        group_annotations[REDIS_PASSWORD_SECRET] = f"{password_secret}/{PASSWORD_KEY}"
        if sentinel_auth:
            common_env.append(_secret_env("REDIS_SENTINEL_PASSWORD", password_secret))
            group_annotations[REDIS_SENTINEL_PASSWORD_SECRET] = f"{password_secret}/{PASSWORD_KEY}"
    data_selector = {
        "matchLabels": dict(base),
        "matchExpressions": [{"key": COMPONENT_LABEL, "operator": "In", "values": ["master", "replica"]}],
    }
    data_mounts = [{"name": "data", "mountPath": "/data"}]
    for role, sts, count, zone in (
        ("master", master_sts, 1, master_zone),
        ("replica", replica_sts, replicas, replica_zone),
    ):
        labels = {**base, COMPONENT_LABEL: role}
        out.append(_headless(namespace, sts, labels, REDIS_PORT, "redis"))
        env = [_env("REDIS_ROLE", role), *common_env]
        affinity = {**_zone_affinity(zone), **(_anti_affinity(data_selector) if anti_affinity else {})}
        out.append(
            _statefulset(
                namespace,
                sts,
                replicas=count,
                service=sts,
                labels=labels,
                annotations={**group_annotations, REDIS_ROLE: role},
                container=_container("redis", REDIS_PORT, "redis", env, data_mounts),
                affinity=affinity,
                process="redis",
                storage=storage,
                grace_s=termination_grace_s,
            )
        )
    sentinel_labels = {**base, COMPONENT_LABEL: "sentinel"}
    out.append(_headless(namespace, sentinel_sts, sentinel_labels, SENTINEL_PORT, "sentinel"))
    sentinel_env = [
        *common_env,
        _env("REDIS_SENTINEL_QUORUM", str(quorum)),
        _env("REDIS_SENTINEL_DOWN_AFTER_MS", str(down_after_ms)),
        _env("REDIS_SENTINEL_FAILOVER_TIMEOUT_MS", str(failover_timeout_ms)),
    ]
    out.append(
        _statefulset(
            namespace,
            sentinel_sts,
            replicas=sentinels,
            service=sentinel_sts,
            labels=sentinel_labels,
            annotations={**group_annotations, REDIS_ROLE: "sentinel"},
            container=_container(
                "sentinel",
                SENTINEL_PORT,
                "sentinel",
                sentinel_env,
                [{"name": "sentinel-conf", "mountPath": "/opt/bitnami/redis-sentinel/etc"}],
            ),
            affinity=_anti_affinity({"matchLabels": sentinel_labels}) if anti_affinity else {},
            process="sentinel",
            storage=None,
            grace_s=termination_grace_s,
            volumes=[{"name": "sentinel-conf", "emptyDir": {}}],
        )
    )
    if pdb_max_unavailable is not None:
        for sts, role in ((master_sts, "master"), (replica_sts, "replica"), (sentinel_sts, "sentinel")):
            out.append(_pdb(namespace, sts, {**base, COMPONENT_LABEL: role}, pdb_max_unavailable))
    return out


def _zone_suffixes(zones: tuple[str, ...]) -> list[str]:
    letters = [z[-1] for z in zones]
    if all(c.isalpha() for c in letters) and len(set(letters)) == len(letters):
        return letters
    return [string.ascii_lowercase[i] for i in range(len(zones))]


def redis_cluster(
    namespace: str = "redis",
    name: str = "redis-cluster",
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b"),
    per_zone: int = 3,
    password_secret: str | None = None,
    announce_ip: bool = False,
    *,
    password: str | None = None,
    node_timeout_ms: int = 5000,
    anti_affinity: bool = False,
    pdb_max_unavailable: int | None = None,
    storage: str = "1Gi",
    termination_grace_s: int = 30,
    create_namespace: bool = False,
) -> list[Obj]:
    """A Redis Cluster as one StatefulSet per zone (``<name>-<zone letter>``), pinned to its zone.

    ``announce_ip`` False (default) starts nodes without ``cluster-announce-ip``, reproducing
    redis/redis#4645 after a move. ``anti_affinity`` keeps all cluster pods on distinct nodes
    (charts default to a soft rule, which the sandbox scheduler does not model).
    """
    base = {NAME_LABEL: "redis-cluster", INSTANCE_LABEL: name}
    headless = f"{name}-headless"
    out: list[Obj] = [namespace_manifest(namespace)] if create_namespace else []
    env = [
        _env("REDIS_CLUSTER_ANNOUNCE_IP", "true" if announce_ip else "false"),
        _env("REDIS_CLUSTER_NODE_TIMEOUT", str(node_timeout_ms)),
    ]
    annotations = {REDIS_GROUP: name, REDIS_KIND: "cluster"}
    if password_secret is not None:
        out.append(_secret(namespace, password_secret, _password(password)))
        env.append(_secret_env("REDIS_PASSWORD", password_secret))
        annotations[REDIS_PASSWORD_SECRET] = f"{password_secret}/{PASSWORD_KEY}"
    out.append(_headless(namespace, headless, base, REDIS_PORT, "redis"))
    for zone, suffix in zip(zones, _zone_suffixes(zones), strict=True):
        sts = f"{name}-{suffix}"
        labels = {**base, COMPONENT_LABEL: "redis-cluster", "statefulset": sts}
        affinity = {
            **_zone_affinity(zone),
            **(_anti_affinity({"matchLabels": base}) if anti_affinity else {}),
        }
        container = _container("redis", REDIS_PORT, "redis", env, [{"name": "data", "mountPath": "/data"}])
        container["ports"].append({"name": "bus", "containerPort": REDIS_CLUSTER_BUS_PORT})
        out.append(
            _statefulset(
                namespace,
                sts,
                replicas=per_zone,
                service=headless,
                labels=labels,
                annotations={**annotations, REDIS_ZONE: zone},
                container=container,
                affinity=affinity,
                process="redis-cluster",
                storage=storage,
                grace_s=termination_grace_s,
            )
        )
        if pdb_max_unavailable is not None:
            out.append(_pdb(namespace, sts, labels, pdb_max_unavailable))
    return out


def apply_all(sandbox: SandboxLike, manifests: list[Obj]) -> list[Obj]:
    """``sandbox.apply`` each manifest; a Namespace that already exists is fine."""
    created = []
    for obj in manifests:
        if obj["kind"] == "Namespace" and sandbox.store.get("namespaces", None, obj["metadata"]["name"]):
            continue
        created.append(sandbox.apply(obj))
    return created


def _group_statefulsets(sandbox: SandboxLike, namespace: str, name: str, kind: str) -> list[Obj]:
    return [
        s
        for s in sandbox.store.all("statefulsets")
        if s["metadata"].get("namespace") == namespace
        and (s["metadata"].get("annotations") or {}).get(REDIS_GROUP) == name
        and s["metadata"]["annotations"].get(REDIS_KIND) == kind
    ]


def group_password(sandbox: SandboxLike, statefulset: Obj) -> str | None:
    """The Redis password named by a StatefulSet's ``redis-password-secret`` annotation."""
    ref = (statefulset["metadata"].get("annotations") or {}).get(REDIS_PASSWORD_SECRET)
    if not ref:
        return None
    secret, _, key = ref.partition("/")
    return read_secret(sandbox.store, statefulset["metadata"]["namespace"], secret, key or PASSWORD_KEY)


def init_redis_cluster(
    sandbox: SandboxLike, namespace: str, name: str, *, timeout_s: float = 60
) -> dict[str, Any]:
    """The chart's init job: once every cluster pod is Ready, create the cluster over their IPs.

    Masters alternate between zones and each master's replica is a pod of another zone. If the
    cluster already exists (a node knows more than itself) it is left alone and the current
    layout is returned. Returns ``masters`` (pod names), ``replica_of`` (replica -> master pod),
    ``node_ids``, ``ips``, ``zones`` (pod -> value) and ``slots`` (master -> (first, last)).
    """
    deadline = time.monotonic() + timeout_s
    sets = _group_statefulsets(sandbox, namespace, name, "cluster")
    if not sets:
        raise ValueError(f"no Redis Cluster StatefulSets for group {name} in {namespace}")
    sets.sort(key=lambda s: s["metadata"]["name"])
    password = group_password(sandbox, sets[0])
    wanted: dict[str, list[str]] = {
        s["metadata"]["name"]: [f"{s['metadata']['name']}-{i}" for i in range(s["spec"].get("replicas", 1))]
        for s in sets
    }

    def pods_ready() -> dict[str, Obj] | None:
        pods = {}
        for names in wanted.values():
            for pod_name in names:
                pod = sandbox.store.get("pods", namespace, pod_name)
                if pod is None or not _ready(pod) or not pod["status"].get("podIP"):
                    return None
                pods[pod_name] = pod
        return pods

    while (pods := pods_ready()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis Cluster {namespace}/{name}: pods not all Ready in {timeout_s}s")
        time.sleep(0.1)
    ips = {n: p["status"]["podIP"] for n, p in pods.items()}
    zones = {n: _pod_zone(sandbox, p) for n, p in pods.items()}
    first = ips[next(iter(ips))]
    if cluster_info(first, REDIS_PORT, password).get("cluster_known_nodes") != "1":
        return _existing_layout(ips, zones, password)
    by_zone = list(wanted.values())
    masters, replicas = _plan_cluster(by_zone)
    order = masters + replicas
    layout = cluster_create(
        [(ips[n], REDIS_PORT) for n in order],
        replicas=1,
        password=password,
        timeout_s=max(deadline - time.monotonic(), 1.0),
    )
    by_ip = {ip: n for n, ip in ips.items()}
    return {
        "masters": masters,
        "replica_of": {by_ip[r]: by_ip[m] for (r, _), (m, _) in layout.replica_of.items()},
        "node_ids": {by_ip[ip]: node_id for (ip, _), node_id in layout.node_ids.items()},
        "ips": ips,
        "zones": zones,
        "slots": {by_ip[ip]: rng for (ip, _), rng in layout.slots.items()},
    }


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _plan_cluster(by_zone: list[list[str]]) -> tuple[list[str], list[str]]:
    """Masters alternate over zones; the other pods are their replicas, each from another zone.

    Returns ``(masters, replicas)`` in ``cluster_create`` order: replica k follows master
    ``k % len(masters)`` (an odd pod count gives one master two replicas).
    """
    total = sum(len(z) for z in by_zone)
    queues = [list(z) for z in by_zone]
    zone_of = {pod: i for i, z in enumerate(by_zone) for pod in z}
    masters: list[str] = []
    turn = 0
    while len(masters) < max(total // 2, 1):
        queue = queues[turn % len(queues)]
        if queue:
            masters.append(queue.pop(0))
        turn += 1
    replicas: list[str] = []
    for k in range(total - len(masters)):
        master = masters[k % len(masters)]
        others = [q for i, q in enumerate(queues) if i != zone_of[master] and q]
        if not others:
            raise ValueError(f"no pod left in another zone to replicate {master}")
        replicas.append(max(others, key=len).pop(0))
    return masters, replicas


def _pod_zone(sandbox: SandboxLike, pod: Obj) -> str | None:
    node = sandbox.store.get("nodes", None, pod["spec"].get("nodeName", ""))
    return ((node or {}).get("metadata", {}).get("labels") or {}).get(LABEL_TOPOLOGY_ZONE)


def _existing_layout(
    ips: dict[str, str], zones: dict[str, str | None], password: str | None
) -> dict[str, Any]:
    by_ip = {ip: n for n, ip in ips.items()}
    nodes = cluster_nodes(ips[next(iter(ips))], REDIS_PORT, password)
    by_id = {n["id"]: by_ip.get(n["ip"], n["ip"]) for n in nodes}
    masters = [by_id[n["id"]] for n in nodes if "master" in n["flags"] and n["slots"]]
    return {
        "masters": sorted(masters),
        "replica_of": {by_id[n["id"]]: by_id[n["master_id"]] for n in nodes if n["master_id"]},
        "node_ids": {name: node_id for node_id, name in by_id.items()},
        "ips": ips,
        "zones": zones,
        "slots": {by_id[n["id"]]: n["slots"][0] for n in nodes if n["slots"]},
    }


__all__ = [
    "PASSWORD_KEY",
    "apply_all",
    "group_password",
    "init_redis_cluster",
    "namespace_manifest",
    "redis_cluster",
    "sentinel_group",
]
