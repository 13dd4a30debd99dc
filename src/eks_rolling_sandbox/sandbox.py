"""`Sandbox`: the whole local cluster in one object (API server, controllers, cloud, processes).

Upstream: the composition of kube-apiserver (pkg/controlplane: storage, then REST endpoints
such as pods/eviction built on it) and kube-controller-manager (one controller per concern).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .api import selection
from .api.auth import ADMIN_TOKEN
from .api.eviction import Eviction
from .api.faults import Faults, RequestLog
from .api.objects import controller_of
from .api.registry import Registry
from .api.resources import BY_KIND
from .api.server import ApiServer
from .api.store import Obj, Store
from .api.tls import TlsFiles
from .controllers.base import Manager, Timings
from .controllers.disruption import DisruptionController
from .controllers.endpoints import EndpointsController
from .controllers.gc import DEPENDENT_KINDS, GarbageCollector
from .controllers.kubelet import Kubelet, ProcessRuntime
from .controllers.nodes import NodeLifecycleController, PodGC
from .controllers.scheduler import Scheduler
from .controllers.workloads import (
    DaemonSetController,
    DeploymentController,
    ReplicaSetController,
    StatefulSetController,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _owner_uids(obj: Obj) -> list[str]:
    return [r["uid"] for r in obj["metadata"].get("ownerReferences") or []]


def _orphan_namespace(obj: Obj) -> list[str]:
    return [] if controller_of(obj) else [obj["metadata"].get("namespace", "")]


class Sandbox:
    """A local EKS-like cluster. `start()` serves the API; `stop()` leaves nothing running."""

    def __init__(
        self,
        *,
        timings: Timings | None = None,
        runtime: ProcessRuntime | None = None,
        watch_max_s: float = 30.0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.timings = timings or Timings()
        self.store = Store()
        self.store.add_index(
            "pods", "node", lambda o: [o["spec"]["nodeName"]] if o["spec"].get("nodeName") else []
        )
        self.store.index_field("pods", "spec.nodeName", "node")  # kubectl drain, our tool
        for plural in {*DEPENDENT_KINDS, "persistentvolumeclaims"}:
            self.store.add_index(plural, "owner", _owner_uids)
        # Pods no controller owns, by namespace: what ReplicaSets / StatefulSets may adopt, found
        # without listing every pod of the namespace on every reconcile.
        self.store.add_index("pods", "orphan", _orphan_namespace)
        selection.install(self.store)  # pods by label, Services / PDBs by selector
        self.store.add_index("events", "involved", lambda o: [o.get("involvedObject", {}).get("uid", "")])
        self.registry = Registry(self.store)
        self.faults = Faults()
        self.request_log = RequestLog()
        self.tls = tls
        # storage.go's NewStorage: the eviction subresource is built on the registry, and the
        # server routes pods/eviction to it; the registry never sees it.
        self.eviction = Eviction(self.registry)
        self.server = ApiServer(
            self.registry,
            subresources={"pods/eviction": self.eviction},
            faults=self.faults,
            request_log=self.request_log,
            watch_max_s=watch_max_s,
            ssl_context=tls.server_context() if tls else None,
        )
        self.manager = Manager(self.store, self.registry, self.timings)
        self.runtime = runtime
        for cls in (
            Scheduler,
            ReplicaSetController,
            DeploymentController,
            StatefulSetController,
            DaemonSetController,
            DisruptionController,
            NodeLifecycleController,
            PodGC,
            EndpointsController,
            GarbageCollector,
        ):
            self.manager.add(cls(self.manager))
        self.kubelet = Kubelet(self.manager, runtime)
        self.manager.add(self.kubelet)
        self._stoppers: list[Callable[[], None]] = []
        self._started = False
        for ns in DEFAULT_NAMESPACES:
            self.registry.create("namespaces", None, {"metadata": {"name": ns}})

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self.server.start()
        self.manager.start()
        self._started = True
        return self

    def on_stop(self, fn: Callable[[], None]) -> None:
        """Run `fn` at stop, last registered first."""
        self._stoppers.append(fn)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for fn in reversed(self._stoppers):
            try:
                fn()
            except Exception:
                log.exception("sandbox stop hook failed")
        self.manager.stop()
        self.server.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- access --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    def kubeconfig(self, path: str | Path, *, context: str = "sandbox", token: str | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        user: dict[str, Any] = {"token": token} if token else {}
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.tls.ca.read_bytes()).decode()
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": user}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}
            ],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def client(self) -> Any:
        """An official `kubernetes.client.ApiClient` bound to this sandbox."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        if self.tls is not None:
            cfg.ssl_ca_cert = str(self.tls.ca)
        cfg.api_key = {"authorization": ADMIN_TOKEN}  # accepted when the API authenticates
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)

    # --- conveniences for tests and scenarios --------------------------------------------------
    def apply(self, obj: Obj) -> Obj:
        """Create one object given in manifest form (apiVersion/kind/metadata...)."""
        res = BY_KIND[obj["kind"]]
        ns = obj.get("metadata", {}).get("namespace") if res.namespaced else None
        return self.registry.create(res.plural, ns or ("default" if res.namespaced else None), obj)

    def wait_for(
        self,
        predicate: Callable[[], T],
        *,
        timeout: float = 10.0,
        interval: float = 0.05,
        what: str = "condition",
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox: timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def settle(self, *, timeout: float = 10.0, horizon_s: float = 0.0) -> None:
        """Wait until the controllers have nothing to do now (timers further out are ignored)."""
        self.wait_for(lambda: self.manager.idle(horizon_s), timeout=timeout, what="controllers to settle")

    def pods(self, namespace: str | None = None, selector: str | None = None) -> list[Obj]:
        return self.store.list("pods", namespace, selector)[0]

    def pods_of(self, kind: str, namespace: str, name: str) -> list[Obj]:
        """Pods whose controller chain leads to the named workload (ReplicaSets resolved)."""
        out = []
        for p in self.store.list("pods", namespace)[0]:
            ref = controller_of(p)
            if ref is None:
                continue
            if ref["kind"] == "ReplicaSet" and kind == "Deployment":
                rs = self.store.get("replicasets", namespace, ref["name"])
                ref = controller_of(rs) if rs else None
            if ref and ref["kind"] == kind and ref["name"] == name:
                out.append(p)
        return out
