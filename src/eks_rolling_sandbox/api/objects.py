"""Complete object templates and API defaulting.

The official client validates responses strictly (required fields such as
`containerStatuses[].imageID` or `conditions[].status` must be present, ints must be ints), so every
object the sandbox emits is built from full templates here. The sandbox's own tests round-trip
every response through the client's models.

Upstream: the defaulters of pkg/apis/core/v1/defaults.go and pkg/apis/apps/v1/defaults.go, and
the validation the tool can trip (pkg/apis/core/validation).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from eks_rolling.labels import (
    LABEL_ARCH_STABLE,
    LABEL_FAILURE_DOMAIN_BETA_ZONE,
    LABEL_HOSTNAME,
    LABEL_INSTANCE_TYPE_STABLE,
    LABEL_OS_STABLE,
    LABEL_TOPOLOGY_REGION,
    LABEL_TOPOLOGY_ZONE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE,
)
from eks_rolling.planning.resources import instance_capacity

from .errors import ApiError, invalid
from .selectors import label_selector_matches
from .store import Obj, timestamp

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
TAINT_EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}


KUBELET_VERSION = "v1.32.9-eks-113cf36"

# Node k's addresses are loopback, so a pod's process can bind its pod IP. Node k = 254 g + i
# (i in 1..254) owns 127.i.4g.0 - 127.i.4g+3.255: nodes 1-254 keep their 127.k.0.x of old, and
# 63 generations after them reuse the second octets with higher third ones (a 1,000-node roll
# launches 2,000 instances, each with an index never reused in its run).
_ADDR_BLOCK = 4  # third-octet values per node
ADDRESSES_PER_NODE = _ADDR_BLOCK * 256
MAX_NODE_INDEX = 254 * (256 // _ADDR_BLOCK)


def pod_ip(index: int, n: int) -> str:
    """Node `index`'s n-th address: n = 1 is the node itself, pods take 2 and up. Index 0 is a
    Node created without the bridge (no index annotation): 127.0.x.y, as before."""
    if not 0 <= index <= MAX_NODE_INDEX or not 1 <= n < ADDRESSES_PER_NODE:
        raise ValueError(f"no sandbox address {n} for node index {index} (0..{MAX_NODE_INDEX})")
    if index == 0:
        return f"127.0.{n >> 8}.{n & 255}"
    g, i = divmod(index - 1, 254)
    return f"127.{i + 1}.{g * _ADDR_BLOCK + (n >> 8)}.{n & 255}"


def template_hash(template: Any) -> str:
    """A stable short hash of a pod template (pod-template-hash / controller-revision-hash)."""
    import json

    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(c for c in digest if c in "bcdfghjklmnpqrstvwxz2456789")[:10] or digest[:10]


def condition(
    ctype: str, status: bool | str, reason: str = "", message: str = "", now: str | None = None
) -> Obj:
    st = status if isinstance(status, str) else ("True" if status else "False")
    now = now or timestamp()
    c: Obj = {"type": ctype, "status": st, "lastTransitionTime": now, "lastProbeTime": None}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def set_condition(conditions: list[Obj], new: Obj) -> list[Obj]:
    """Replace the condition of the same type, keeping lastTransitionTime if status is unchanged."""
    out = []
    replaced = False
    for c in conditions:
        if c["type"] == new["type"]:
            if c.get("status") == new["status"] and "lastTransitionTime" in c:
                new = {**new, "lastTransitionTime": c["lastTransitionTime"]}
            out.append(new)
            replaced = True
        else:
            out.append(c)
    if not replaced:
        out.append(new)
    return out


# --- nodes -----------------------------------------------------------------------------------------
def node_resources(instance_type: str) -> Obj:
    """status.capacity and .allocatable as the kubelet of an EKS AMI reports them for the type
    (eks_rolling.planning.resources cites the reservation formula); m5.large for unknown types."""
    cap = instance_capacity(instance_type) or instance_capacity("m5.large")
    assert cap is not None
    return {
        "capacity": {
            "cpu": str(cap.capacity.cpu_m // 1000),
            "memory": f"{cap.capacity.memory // 1024}Ki",
            "pods": str(cap.max_pods),
            "ephemeral-storage": "83873772Ki",
        },
        "allocatable": {
            "cpu": f"{cap.allocatable.cpu_m}m",
            "memory": f"{cap.allocatable.memory // 1024}Ki",
            "pods": str(cap.max_pods),
            "ephemeral-storage": "76224326324",
        },
    }


def node_object(
    name: str,
    *,
    instance_id: str,
    az: str,
    region: str,
    instance_type: str,
    index: int,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
) -> Obj:
    """A Node as the kubelet of an EKS AL2023 node registers it: NotReady until the kubelet is up."""
    now = timestamp()
    host_ip = pod_ip(index, 1)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                LABEL_HOSTNAME: name,
                LABEL_OS_STABLE: "linux",
                LABEL_ARCH_STABLE: "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                LABEL_TOPOLOGY_REGION: region,
                LABEL_TOPOLOGY_ZONE: az,
                LABEL_FAILURE_DOMAIN_BETA_ZONE: az,
                LABEL_INSTANCE_TYPE_STABLE: instance_type,
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                **(labels or {}),
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": host_ip,
                "sandbox.eks-rolling.io/index": str(index),
            },
        },
        "spec": {
            "providerID": f"aws:///{az}/{instance_id}",
            "taints": [
                {"key": TAINT_NODE_NOT_READY, "effect": "NoSchedule", "timeAdded": now},
                *(taints or []),
            ],
        },
        "status": {
            **node_resources(instance_type),
            "conditions": [
                _node_condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                    now,
                ),
                _node_condition(
                    "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now
                ),
                _node_condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                    now,
                ),
                _node_condition(
                    "Ready", "False", "KubeletNotReady", "container runtime network not ready", now
                ),
            ],
            "addresses": [
                {"type": "InternalIP", "address": host_ip},
                {"type": "InternalDNS", "address": f"{name}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": hashlib.md5(instance_id.encode()).hexdigest(),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.141-155.222.amzn2023.x86_64",
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": hashlib.md5(name.encode()).hexdigest(),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.8.20250715",
                "systemUUID": hashlib.md5((name + instance_id).encode()).hexdigest(),
            },
            "images": [],
        },
    }


def _node_condition(ctype: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def node_condition(node: Obj, ctype: str) -> Obj | None:
    return next((c for c in node.get("status", {}).get("conditions", []) if c["type"] == ctype), None)


def node_is_ready(node: Obj) -> bool:
    c = node_condition(node, "Ready")
    return bool(c and c["status"] == "True")


def node_index(node: Obj) -> int:
    return int(node["metadata"].get("annotations", {}).get("sandbox.eks-rolling.io/index", "0"))


# --- pods ------------------------------------------------------------------------------------------
def default_pod(pod: Obj) -> Obj:
    spec = pod.setdefault("spec", {})
    md = pod.setdefault("metadata", {})
    md.setdefault("labels", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    # DefaultTolerationSeconds admission: tolerate not-ready/unreachable for 300 s.
    for key in (TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE):
        if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")
    status = pod.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", _qos(spec))
    return pod


def _qos(spec: Obj) -> str:
    reqs = [c.get("resources", {}) for c in spec.get("containers", [])]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    if all(r.get("limits") and r.get("requests") == r.get("limits") for r in reqs):
        return "Guaranteed"
    return "Burstable"


def validate_pod(pod: Obj) -> None:
    name = pod["metadata"].get("name") or ""
    causes: list[dict[str, str]] = []
    if name and not DNS1123_SUBDOMAIN.match(name):
        causes.append(
            {
                "field": "metadata.name",
                "message": f"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
            }
        )
    spec = pod.get("spec", {})
    if not spec.get("containers"):
        causes.append(
            {"field": "spec.containers", "message": "Required value", "reason": "FieldValueRequired"}
        )
    volumes = {v["name"] for v in spec.get("volumes", [])}
    for kind in ("initContainers", "containers"):
        for ci, c in enumerate(spec.get(kind, [])):
            if not c.get("name"):
                causes.append(
                    {
                        "field": f"spec.{kind}[{ci}].name",
                        "message": "Required value",
                        "reason": "FieldValueRequired",
                    }
                )
            for mi, m in enumerate(c.get("volumeMounts", [])):
                if m.get("name") not in volumes:
                    causes.append(
                        {
                            "field": f"spec.{kind}[{ci}].volumeMounts[{mi}].name",
                            "message": f'Not found: "{m.get("name")}"',
                            "reason": "FieldValueNotFound",
                        }
                    )
    for ti, t in enumerate(spec.get("tolerations", [])):
        if t.get("effect") and t["effect"] not in TAINT_EFFECTS:
            causes.append(
                {"field": f"spec.tolerations[{ti}].effect", "message": f'Unsupported value: "{t["effect"]}"'}
            )
    if causes:
        raise invalid("Pod", name, causes)


POD_MUTABLE_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def validate_pod_update(old: Obj, new: Obj) -> None:
    """Pod specs are immutable apart from images, activeDeadlineSeconds and added tolerations."""

    def strip(spec: Obj) -> Obj:
        s = {k: v for k, v in spec.items() if k not in POD_MUTABLE_SPEC and k != "nodeName"}
        s["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers", [])]
        return s

    if strip(old.get("spec", {})) != strip(new.get("spec", {})):
        raise invalid(
            "Pod",
            old["metadata"]["name"],
            [
                {
                    "field": "spec",
                    "message": "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                    "reason": "FieldValueForbidden",
                }
            ],
        )
    if old["spec"].get("nodeName") and new["spec"].get("nodeName") != old["spec"]["nodeName"]:
        raise invalid(
            "Pod",
            old["metadata"]["name"],
            [{"field": "spec.nodeName", "message": "Forbidden: field is immutable"}],
        )


def pod_is_ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


def pod_is_terminal(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def controller_of(obj: Obj) -> Obj | None:
    return next((r for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")), None)


def owner_ref(owner: Obj, *, controller: bool = True) -> Obj:
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def container_status(container: Obj, *, running_since: str, ready: bool, restart_count: int = 0) -> Obj:
    image = container.get("image", "busybox")
    return {
        "name": container["name"],
        "image": image if ":" in image.split("/")[-1] else f"{image}:latest",
        "imageID": f"docker.io/library/{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}",
        "containerID": f"containerd://{hashlib.sha256((container['name'] + running_since).encode()).hexdigest()}",
        "ready": ready,
        "started": True,
        "restartCount": restart_count,
        "state": {"running": {"startedAt": running_since}},
        "lastState": {},
    }


# --- workloads and the rest ------------------------------------------------------------------------
def default_object(plural: str, obj: Obj) -> Obj:
    spec = (
        obj.setdefault("spec", {})
        if plural
        not in (
            "events",
            "secrets",
            "configmaps",
            "endpoints",
            "endpointslices",
            "serviceaccounts",
            "controllerrevisions",
        )
        else None
    )
    if plural == "pods":
        return default_pod(obj)
    if plural == "deployments":
        assert spec is not None
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        )
        obj.setdefault("status", {})
    elif plural == "replicasets":
        assert spec is not None
        spec.setdefault("replicas", 1)
        obj.setdefault("status", {"replicas": 0})
    elif plural == "statefulsets":
        assert spec is not None
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault(
            "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
        )
        obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})
    elif plural == "daemonsets":
        assert spec is not None
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        )
        obj.setdefault(
            "status",
            {
                "currentNumberScheduled": 0,
                "desiredNumberScheduled": 0,
                "numberMisscheduled": 0,
                "numberReady": 0,
            },
        )
    elif plural == "poddisruptionbudgets":
        # observedGeneration 0 < generation 1: evictions get 429 + Retry-After until the
        # disruption controller has seen the PDB, as upstream.
        obj.setdefault(
            "status",
            {
                "currentHealthy": 0,
                "desiredHealthy": 0,
                "disruptionsAllowed": 0,
                "expectedPods": 0,
                "observedGeneration": 0,
            },
        )
    elif plural == "services":
        assert spec is not None
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif plural == "persistentvolumeclaims":
        assert spec is not None
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("storageClassName", "gp3")
        obj.setdefault("status", {"phase": "Pending"})
    elif plural == "persistentvolumes":
        assert spec is not None
        spec.setdefault("persistentVolumeReclaimPolicy", "Delete")
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {"phase": "Available"})
    elif plural == "namespaces":
        assert spec is not None
        spec.setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {"phase": "Active"})
    elif plural == "nodes":
        obj.setdefault("status", {})
    elif plural == "events":
        obj.setdefault("involvedObject", {})
        obj.setdefault("reportingComponent", "")
        obj.setdefault("reportingInstance", "")
    return obj


def validate_object(plural: str, obj: Obj) -> None:
    if plural == "pods":
        validate_pod(obj)
    elif plural == "nodes":
        for i, t in enumerate(obj.get("spec", {}).get("taints") or []):
            if t.get("effect") not in TAINT_EFFECTS:
                raise invalid(
                    "Node",
                    obj["metadata"]["name"],
                    [
                        {
                            "field": f"spec.taints[{i}].effect",
                            "message": f'Unsupported value: "{t.get("effect")}": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"',
                        }
                    ],
                )
            if not t.get("key"):
                raise invalid(
                    "Node",
                    obj["metadata"]["name"],
                    [{"field": f"spec.taints[{i}].key", "message": "Required value"}],
                )
    elif plural in ("deployments", "replicasets", "statefulsets", "daemonsets"):
        spec = obj.get("spec", {})
        sel = spec.get("selector")
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        if not sel:
            raise invalid(
                obj.get("kind", plural),
                obj["metadata"]["name"],
                [{"field": "spec.selector", "message": "Required value"}],
            )
        if not label_selector_matches(sel, labels):
            raise invalid(
                obj.get("kind", plural),
                obj["metadata"]["name"],
                [
                    {
                        "field": "spec.template.metadata.labels",
                        "message": f"Invalid value: {labels}: `selector` does not match template `labels`",
                    }
                ],
            )
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            raise invalid(
                obj.get("kind", plural),
                obj["metadata"]["name"],
                [{"field": "spec.replicas", "message": "must be greater than or equal to 0"}],
            )


def quantity_percent(value: Any, total: int, *, round_up: bool) -> int:
    """IntOrString like `maxUnavailable: 25%` (GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        import math

        frac = int(s[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    try:
        return int(s)
    except ValueError as exc:
        raise ApiError(422, "Invalid", f"invalid value for IntOrString: {s}") from exc
