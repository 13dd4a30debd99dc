"""The API resources the sandbox serves, and how each is named on the wire.

Upstream: the API groups and resources kube-apiserver installs (pkg/controlplane), as discovery
(staging/src/k8s.io/apiserver/pkg/endpoints/discovery) reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Spec changes bump metadata.generation (workloads and PDBs); status only through /status.
    has_status: bool = False
    generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: `pods`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular(self) -> str:
        return self.kind.lower()


_r = Resource  # short alias for the table below


RESOURCES: tuple[Resource, ...] = (
    _r("nodes", "Node", "", "v1", False, ("no",), ("status",), has_status=True),
    _r("pods", "Pod", "", "v1", True, ("po",), ("status", "eviction", "binding"), has_status=True),
    _r("namespaces", "Namespace", "", "v1", False, ("ns",), ("status",), has_status=True),
    _r("services", "Service", "", "v1", True, ("svc",), ("status",), has_status=True),
    _r("endpoints", "Endpoints", "", "v1", True, ("ep",)),
    _r("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", True, ("pvc",), ("status",), True),
    _r("persistentvolumes", "PersistentVolume", "", "v1", False, ("pv",), ("status",), True),
    _r("events", "Event", "", "v1", True, ("ev",)),
    _r("secrets", "Secret", "", "v1", True),
    _r("configmaps", "ConfigMap", "", "v1", True, ("cm",)),
    _r("serviceaccounts", "ServiceAccount", "", "v1", True, ("sa",)),
    _r("deployments", "Deployment", "apps", "v1", True, ("deploy",), ("status", "scale"), True, True),
    _r("replicasets", "ReplicaSet", "apps", "v1", True, ("rs",), ("status", "scale"), True, True),
    _r("statefulsets", "StatefulSet", "apps", "v1", True, ("sts",), ("status", "scale"), True, True),
    _r("daemonsets", "DaemonSet", "apps", "v1", True, ("ds",), ("status",), True, True),
    _r("controllerrevisions", "ControllerRevision", "apps", "v1", True),
    # Stored only (no Job controller): tests set a Job's status themselves.
    _r("jobs", "Job", "batch", "v1", True, (), ("status",), True, True),
    _r(
        "poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, ("pdb",), ("status",), True, True
    ),
    _r("endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", True),
    _r("leases", "Lease", "coordination.k8s.io", "v1", True),
)

BY_GROUP_PLURAL: dict[tuple[str, str], Resource] = {(r.group, r.plural): r for r in RESOURCES}
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
BY_PLURAL: dict[str, Resource] = {r.plural: r for r in RESOURCES}

# Groups advertised by discovery, in the order the real server lists them.
GROUP_VERSIONS: tuple[tuple[str, str], ...] = (
    ("apps", "v1"),
    ("policy", "v1"),
    ("batch", "v1"),
    ("discovery.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
)


def resource(plural: str) -> Resource:
    return BY_PLURAL[plural]
