"""Everything eks-rolling asks of the Kubernetes API, with errors translated to ours."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import urllib3
from aws_lambda_powertools import Tracer
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..aws.eks_auth import KubeConnection
from ..errors import ConflictError, EvictionRejectedError, KubeApiUnavailableError, MultiplePdbError
from ..labels import (
    CONFIG_MIRROR_ANNOTATION,
    DO_NOT_DISRUPT,
    DO_NOT_DISRUPT_DEADLINE,
    KARPENTER_DO_NOT_DISRUPT,
    LABEL_INSTANCE_TYPE_STABLE,
    LABEL_TOPOLOGY_ZONE,
    REDIS_GROUP,
)
from ..planning.owners import STATUS_KINDS, OwnerPods, recovered
from ..planning.resources import Resources, cpu_millis, memory_bytes
from ..planning.selectors import selector_matches
from ..planning.snapshot import NodeView, OwnerRef, PdbView, PodView, Taint, Toleration
from ..settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CONFLICT_RETRIES = 5
DO_NOT_DISRUPT_KEYS = (DO_NOT_DISRUPT, KARPENTER_DO_NOT_DISRUPT)


# kube-apiserver's message for an eviction of a pod matched by more than one PDB (pkg/registry/
# core/pod/storage/eviction.go): "This pod has more than one PodDisruptionBudget, ...".
_MULTIPLE_PDBS = "more than one PodDisruptionBudget"
# A 429's explanation may name the PDB's numbers from a listing this old: a drain that meets many
# blocked pods lists the namespace's PDBs (thousands in a big cluster) once, not once per pod.
_BLOCKED_PDBS_MAX_AGE_S = 5.0
# eviction.go's 429 carries a StatusCause of type DisruptionBudget ("reason" in JSON) whose message
# starts "The disruption budget <name> ..."; its usual form gives the numbers too. Reading it
# spares a PDB listing per blocked pod: with hundreds of drains at once, those listings (every PDB
# of the namespace, each round) were the largest cost of a drain.
_BUDGET_CAUSE = re.compile(r"^The disruption budget (?P<name>\S+) ")
_BUDGET_NUMBERS = re.compile(r"needs (?P<desired>\d+) healthy pods and has (?P<current>\d+) currently")


class ControllerMemo:
    """ReplicaSet UID -> its controller (a Deployment), remembered per Lambda container: it never
    changes while the ReplicaSet lives. Each drain invocation read every pod's ReplicaSet again,
    10.6 % of a 1,000-node roll's CPU while it drained (py-spy), and as many GETs on the API server.
    Thread-safe and bounded (least recently used forgotten first)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._limit = limit
        self._known: OrderedDict[str, OwnerRef] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid: str | None) -> OwnerRef | None:
        with self._lock:
            found = self._known.get(uid) if uid else None
            if found is not None:
                self._known.move_to_end(uid)  # type: ignore[arg-type]
            return found

    def put(self, uid: str | None, owner: OwnerRef) -> None:
        if not uid:
            return
        with self._lock:
            self._known[uid] = owner
            while len(self._known) > self._limit:
                self._known.popitem(last=False)


CONTROLLERS = ControllerMemo()


def instance_id_of(provider_id: str | None) -> str | None:
    """`aws:///us-east-1a/i-0abc` -> `i-0abc`."""
    if not provider_id or not provider_id.startswith("aws://"):
        return None
    return provider_id.rsplit("/", 1)[-1] or None


def node_view(node: dict[str, Any]) -> NodeView:
    """A Node in its JSON form (as the API server sends it) -> what the planner reads."""
    md, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = md.get("labels") or {}
    alloc = status.get("allocatable") or {}
    return NodeView(
        name=md["name"],
        instance_id=instance_id_of(spec.get("providerID")),
        az=labels.get(LABEL_TOPOLOGY_ZONE),
        ready=any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        ),
        taints=tuple(Taint(t["key"], t["effect"], t.get("value") or "") for t in spec.get("taints") or []),
        unschedulable=bool(spec.get("unschedulable")),
        instance_type=labels.get(LABEL_INSTANCE_TYPE_STABLE),
        allocatable=Resources(cpu_millis(alloc["cpu"]), memory_bytes(alloc.get("memory")))
        if "cpu" in alloc
        else None,
        max_pods=int(alloc.get("pods", 110)),
        labels=dict(labels),
        annotations=dict(md.get("annotations") or {}),
    )


@dataclass(frozen=True)
class EvictionOutcome:
    status: Literal["evicted", "gone", "blocked"]
    detail: str = ""


@contextmanager
def kube_errors(what: str) -> Iterator[None]:
    """Map transport and server failures to retryable errors; leave the rest to callers."""
    try:
        yield
    except ApiException as exc:
        if exc.status == 409:
            raise ConflictError(f"{what}: conflict: {_message(exc)}") from exc
        if exc.status in (429, 500, 502, 503, 504) or exc.status == 0:
            raise KubeApiUnavailableError(f"{what}: HTTP {exc.status}: {_message(exc)}") from exc
        raise
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeApiUnavailableError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _status(exc: ApiException) -> dict[str, Any]:
    """The Status object the apiserver answered with, or {} if the body is not one."""
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(exc: ApiException) -> str:
    return str(_status(exc).get("message") or exc.reason)


def _budget_cause(exc: ApiException) -> str | None:
    """The message of a 429's DisruptionBudget cause, if the server sent one."""
    for cause in (_status(exc).get("details") or {}).get("causes") or []:
        if isinstance(cause, dict) and cause.get("reason") == "DisruptionBudget" and cause.get("message"):
            return str(cause["message"])
    return None


def _blocked(pod: str, pdb: str, healthy: object, needed: object, allowed: object) -> str:
    return f"pod {pod} blocked by PodDisruptionBudget {pdb} ({healthy} healthy, {needed} needed, {allowed} disruptions allowed)"


# Powertools' Tracer shares its configuration across instances (lambdas._runtime sets it up).
_TRACER = Tracer()


class TracedApiClient(client.ApiClient):
    """Each Kubernetes API call an X-Ray subsegment, as botocore's calls are (Powertools patches
    botocore; the kubernetes client's urllib3 2 bypasses the http.client patch). A no-op while
    the Tracer is off (outside Lambda, or POWERTOOLS_TRACE_DISABLED)."""

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        with _TRACER.provider.in_subsegment("kubernetes") as segment:
            sub: Any = segment  # an X-Ray Subsegment (Powertools types it as its BaseSegment)
            sub.namespace = "remote"
            sub.put_http_meta("method", method)
            sub.put_http_meta("url", url.split("?", 1)[0])  # the query may carry selectors, not secrets
            response = super().call_api(method, url, *args, **kwargs)
            status = getattr(response, "status", None)
            if isinstance(status, int):
                sub.put_http_meta("status", status)
            return response


def api_client(conn: KubeConnection, settings: Settings) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = conn.url
    cfg.api_key = {"authorization": conn.token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    if conn.ca_file:
        cfg.ssl_ca_cert = conn.ca_file
    return TracedApiClient(cfg)


class KubeOps:
    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.settings = settings
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.timeout = settings.api_timeout_s
        self._owner_cache: dict[tuple[str, str, str], OwnerRef | None] = {}
        self.controllers = CONTROLLERS
        self._sts_cache: dict[tuple[str, str], Any] = {}
        self._pdb_lists: dict[str, tuple[float, list[PdbView]]] = {}

    # --- nodes ---------------------------------------------------------------------------------
    def list_nodes(self) -> list[NodeView]:
        """Every node, parsed from the wire JSON. The client's models add about 0.15 ms of CPU a
        node (pydantic validates every field): with waves together each wave's WaitNewNodes lists
        every node per poll, and at 2,000 nodes those models were 13 % of the sandbox's CPU."""
        with kube_errors("list nodes"):
            raw: Any = self.core.list_node(_request_timeout=self.timeout, _preload_content=False)
            items = json.loads(raw.data).get("items") or []
        return [node_view(n) for n in items]

    def nodes_by_instance(self) -> dict[str, NodeView]:
        return {n.instance_id: n for n in self.list_nodes() if n.instance_id}

    def get_node(self, name: str) -> Any | None:
        try:
            with kube_errors(f"get node {name}"):
                return self.core.read_node(name, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _rmw_node(
        self, name: str, change: Callable[[Any], dict[str, Any] | None], what: str, read: Any | None = None
    ) -> bool:
        """Read-modify-write guarded by resourceVersion: a patch of `spec.taints` replaces the
        whole list, so a taint another controller adds between our read and write must make us
        retry, not vanish. `read`: the node as the caller just read it, for the first try (a stale
        one fails the write's resourceVersion and is read again). Returns False when the node is
        gone or nothing had to change."""
        for attempt in range(MAX_CONFLICT_RETRIES):
            node = read if attempt == 0 and read is not None else self.get_node(name)
            if node is None:
                return False
            body = change(node)
            if body is None:
                return False
            body.setdefault("metadata", {})["resourceVersion"] = node.metadata.resource_version
            try:
                with kube_errors(what):
                    self.core.patch_node(name, body, _request_timeout=self.timeout)
                return True
            except ConflictError:
                log.info("%s: node changed under us, retrying", what)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                return False  # deleted between our read and write (a terminated old node)
        raise ConflictError(f"{what}: node {name} kept changing")

    def add_taint(
        self, name: str, key: str, value: str, effect: str = "NoSchedule", *, node: Any | None = None
    ) -> bool:
        """`node`: the node as just read (a drain round reads it anyway: one GET less per round)."""

        def change(cur: Any) -> dict[str, Any] | None:
            taints = [t.to_dict() for t in cur.spec.taints or []]
            if any(t["key"] == key and t["effect"] == effect for t in taints):
                return None
            taints.append({"key": key, "value": value, "effect": effect})
            return {"spec": {"taints": [_taint_body(t) for t in taints]}}

        return self._rmw_node(name, change, f"taint node {name}", node)

    def remove_taint(self, name: str, key: str, value: str | None = None) -> bool:
        """Remove our taint; with `value`, only if it carries that value (another run's stays)."""

        def change(node: Any) -> dict[str, Any] | None:
            taints = [t.to_dict() for t in node.spec.taints or []]
            keep = [
                t
                for t in taints
                if not (t["key"] == key and (value is None or (t.get("value") or "") == value))
            ]
            if len(keep) == len(taints):
                return None
            return {"spec": {"taints": [_taint_body(t) for t in keep]}}

        return self._rmw_node(name, change, f"untaint node {name}")

    def set_label(self, name: str, key: str, value: str | None) -> bool:
        node = self.get_node(name)
        if node is None or (node.metadata.labels or {}).get(key) == value:
            return False
        try:
            with kube_errors(f"label node {name}"):
                self.core.patch_node(
                    name, {"metadata": {"labels": {key: value}}}, _request_timeout=self.timeout
                )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False  # deleted between our read and write
        return True

    # --- pods ----------------------------------------------------------------------------------
    def pods_on_node(self, node: str) -> list[Any]:
        with kube_errors(f"list pods on {node}"):
            return list(
                self.core.list_pod_for_all_namespaces(
                    field_selector=f"spec.nodeName={node}", _request_timeout=self.timeout
                ).items
            )

    def get_pod(self, namespace: str, name: str) -> Any | None:
        try:
            with kube_errors(f"get pod {namespace}/{name}"):
                return self.core.read_namespaced_pod(name, namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def evict(self, pod: Any, *, uid: str | None = None) -> EvictionOutcome:
        """`uid`: evict only that incarnation (a StatefulSet pod keeps its name when recreated);
        "gone" if the pod was replaced meanwhile."""
        ns, name = pod.metadata.namespace, pod.metadata.name
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace=ns),
            delete_options=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
            if uid
            else None,
        )
        try:
            with kube_errors(f"evict {ns}/{name}"):
                self.core.create_namespaced_pod_eviction(name, ns, body, _request_timeout=self.timeout)
            return EvictionOutcome("evicted")
        except ConflictError:
            # A failed uid precondition is a 409; so is a race the next attempt resolves.
            current = self.get_pod(ns, name) if uid else None
            if uid and (current is None or current.metadata.uid != uid):
                return EvictionOutcome("gone", f"pod {ns}/{name} (uid {uid}) was already replaced")
            raise
        except KubeApiUnavailableError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiException) and cause.status == 429:
                return EvictionOutcome("blocked", self._blocking_reason(pod, cause))
            # The apiserver answers 500 both for a pod under two PDBs (a lasting error) and for
            # its own faults (transient, retried): only its multiple-PDB text is the former.
            if isinstance(cause, ApiException) and cause.status == 500 and _MULTIPLE_PDBS in _message(cause):
                pdbs = ", ".join(p.ref for p in self.pdbs_for(pod)) or "unknown"
                raise MultiplePdbError(
                    f"pod {ns}/{name} is matched by more than one PodDisruptionBudget ({pdbs}): {_message(cause)}"
                ) from exc
            raise
        except ApiException as exc:
            if exc.status == 404:
                return EvictionOutcome("gone")
            raise EvictionRejectedError(
                f"eviction of {ns}/{name} refused: HTTP {exc.status}: {_message(exc)}"
            ) from exc

    def _blocking_reason(self, pod: Any, exc: ApiException) -> str:
        """Name the PDB from the 429's DisruptionBudget cause, or else from our own lookup (the
        top-level 429 text names no PDB)."""
        ns, name = pod.metadata.namespace, pod.metadata.name
        ref = f"{ns}/{name}"
        cause = _budget_cause(exc)
        budget = _BUDGET_CAUSE.match(cause) if cause else None
        if cause and budget:
            numbers = _BUDGET_NUMBERS.search(cause)
            if numbers:
                return _blocked(ref, f"{ns}/{budget['name']}", numbers["current"], numbers["desired"], 0)
            return f"pod {ref} blocked by PodDisruptionBudget {ns}/{budget['name']}: {cause}"
        pdbs = self.pdbs_for(pod, max_age_s=_BLOCKED_PDBS_MAX_AGE_S)
        if pdbs:
            b = pdbs[0]
            return _blocked(ref, b.ref, b.current_healthy, b.desired_healthy, b.disruptions_allowed)
        return f"pod {ref} eviction throttled: {_message(exc)}"

    def delete_pod(
        self, namespace: str, name: str, *, uid: str | None = None, grace_s: int | None = None
    ) -> bool:
        """DELETE, for the Redis Cluster temporary pods only (ours, under no user's PDB): every
        pod of a user's workload leaves through `evict`. False if gone."""
        body = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid) if uid else None, grace_period_seconds=grace_s
        )
        try:
            with kube_errors(f"delete pod {namespace}/{name}"):
                self.core.delete_namespaced_pod(name, namespace, body=body, _request_timeout=self.timeout)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def create_pod(self, namespace: str, body: dict[str, Any]) -> Any:
        pod: Any = body  # the client serialises a plain dict as-is
        with kube_errors(f"create pod in {namespace}"):
            return self.core.create_namespaced_pod(namespace, pod, _request_timeout=self.timeout)

    def list_statefulsets(self) -> list[dict[str, Any]]:
        """StatefulSets as plain JSON (for Redis group discovery)."""
        with kube_errors("list statefulsets"):
            items = self.apps.list_stateful_set_for_all_namespaces(_request_timeout=self.timeout).items
        return [self.apps.api_client.sanitize_for_serialization(s) for s in items]

    def read_secret(self, namespace: str, name: str, key: str) -> str:
        import base64

        with kube_errors(f"get secret {namespace}/{name}"):
            secret = self.core.read_namespaced_secret(name, namespace, _request_timeout=self.timeout)
        raw = (secret.data or {}).get(key)
        if raw is None:
            raise KeyError(f"secret {namespace}/{name} has no key {key}")
        return base64.b64decode(raw).decode()

    def sanitize(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.core.api_client.sanitize_for_serialization(obj)
        return out

    # --- PDBs ----------------------------------------------------------------------------------
    def list_pdbs(self) -> list[PdbView]:
        with kube_errors("list PodDisruptionBudgets"):
            items = self.policy.list_pod_disruption_budget_for_all_namespaces(
                _request_timeout=self.timeout
            ).items
        return [_pdb_view(p) for p in items]

    def pdbs_for(self, pod: Any, *, max_age_s: float = 0.0) -> list[PdbView]:
        """The PDBs selecting `pod`; with `max_age_s`, from a namespace listing at most that old."""
        ns = pod.metadata.namespace
        listed_at, views = self._pdb_lists.get(ns, (float("-inf"), []))
        if time.monotonic() - listed_at > max_age_s:
            with kube_errors(f"list PodDisruptionBudgets in {ns}"):
                items = self.policy.list_namespaced_pod_disruption_budget(
                    ns, _request_timeout=self.timeout
                ).items
            views = [_pdb_view(i) for i in items]
            self._pdb_lists[ns] = (time.monotonic(), views)
        labels = pod.metadata.labels or {}
        return [v for v in views if selector_matches(v.selector, labels)]

    # --- owners and workloads ------------------------------------------------------------------
    def owner_of(self, pod: Any) -> OwnerRef | None:
        """The pod's top-level controller: a ReplicaSet owned by a Deployment is the Deployment."""
        ns = pod.metadata.namespace
        ref = next((r for r in pod.metadata.owner_references or [] if r.controller), None)
        if ref is None:
            return None
        if ref.kind != "ReplicaSet":
            return OwnerRef(ref.kind, ns, ref.name)
        key = (ns, "ReplicaSet", ref.name)
        if key not in self._owner_cache:
            self._owner_cache[key] = self.controllers.get(ref.uid) or self._replicaset_owner(ns, ref)
        return self._owner_cache[key]

    def _replicaset_owner(self, ns: str, ref: Any) -> OwnerRef:
        try:
            with kube_errors(f"get replicaset {ns}/{ref.name}"):
                rs: Any = self.apps.read_namespaced_replica_set(ref.name, ns, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return OwnerRef("ReplicaSet", ns, ref.name)
        dref = next((r for r in rs.metadata.owner_references or [] if r.controller), None)
        if dref is None:  # an orphan may be adopted later: not remembered
            return OwnerRef("ReplicaSet", ns, ref.name)
        owner = OwnerRef(dref.kind, ns, dref.name)
        self.controllers.put(rs.metadata.uid, owner)
        return owner

    def statefulset(self, namespace: str, name: str) -> Any | None:
        key = (namespace, name)
        if key not in self._sts_cache:
            try:
                with kube_errors(f"get statefulset {namespace}/{name}"):
                    self._sts_cache[key] = self.apps.read_namespaced_stateful_set(
                        name, namespace, _request_timeout=self.timeout
                    )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._sts_cache[key] = None
        return self._sts_cache[key]

    def redis_group_of(self, owner: OwnerRef | None) -> str | None:
        if owner is None or owner.kind != "StatefulSet":
            return None
        sts = self.statefulset(owner.namespace, owner.name)
        if sts is None:
            return None
        group = (sts.metadata.annotations or {}).get(REDIS_GROUP)
        return f"{owner.namespace}/{group}" if group else None

    def owner_pods(self, owner: OwnerRef) -> OwnerPods:
        """The pods whose top-level controller is `owner` (a Rollout's pods through their
        ReplicaSets), counted; terminating pods are not counted."""
        with kube_errors(f"list pods in {owner.namespace}"):
            items: list[Any] = self.core.list_namespaced_pod(
                owner.namespace, _request_timeout=self.timeout
            ).items
        present = ready = running = 0
        for pod in items:
            if pod.metadata.deletion_timestamp is not None or not pod.metadata.owner_references:
                continue
            if self.owner_of(pod) != owner:
                continue
            status: Any = pod.status
            present += 1
            running += status is not None and status.phase == "Running"
            ready += status is not None and any(
                c.type == "Ready" and c.status == "True" for c in status.conditions or []
            )
        return OwnerPods(present=present, ready=ready, running=running)

    def job_done(self, namespace: str, name: str) -> bool | None:
        """True once the Job has completed; None if it no longer exists."""
        try:
            with kube_errors(f"get Job {namespace}/{name}"):
                job: Any = self.batch.read_namespaced_job(name, namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        conditions = (job.status.conditions if job.status else None) or []
        return any(c.type == "Complete" and c.status == "True" for c in conditions)

    def workload_ready(self, owner: OwnerRef, before: int | None = None) -> tuple[bool, str]:
        """Is the workload back at its desired ready replicas? (False, why) if not.
        A plain GET of the object (status included), so RBAC needs no status subresource.
        Other owners: the general rule of `services/owners.py`, from their pods and `before`."""
        ns, name = owner.namespace, owner.name
        ref = f"{owner.kind} {ns}/{name}"
        if owner.kind not in STATUS_KINDS:
            job_done = False
            if owner.kind == "Job":
                done = self.job_done(ns, name)
                if done is None:
                    return True, f"{ref} no longer exists"
                job_done = done
            return recovered(ref, owner.kind, before, self.owner_pods(owner), job_done)
        obj: Any
        try:
            with kube_errors(f"get {owner.kind} {ns}/{name}"):
                if owner.kind == "Deployment":
                    obj = self.apps.read_namespaced_deployment(name, ns, _request_timeout=self.timeout)
                elif owner.kind == "StatefulSet":
                    obj = self.apps.read_namespaced_stateful_set(name, ns, _request_timeout=self.timeout)
                else:
                    obj = self.apps.read_namespaced_replica_set(name, ns, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return True, f"{owner.kind} {ns}/{name} no longer exists"
            raise
        want = obj.spec.replicas if obj.spec.replicas is not None else 1
        st = obj.status
        ready = st.ready_replicas or 0
        observed = (st.observed_generation or 0) >= (obj.metadata.generation or 0)
        ok = observed and ready >= want
        if owner.kind == "Deployment":
            ok = ok and (st.available_replicas or 0) >= want
        return ok, f"{owner.kind} {ns}/{name}: {ready}/{want} ready"

    def deployment_replicas(self, namespace: str, name: str) -> int | None:
        try:
            with kube_errors(f"get scale of {namespace}/{name}"):
                scale: Any = self.apps.read_namespaced_deployment_scale(
                    name, namespace, _request_timeout=self.timeout
                )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return int(scale.spec.replicas or 0)

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        with kube_errors(f"scale {namespace}/{name}"):
            self.apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=self.timeout
            )

    # --- views for the planner -----------------------------------------------------------------
    def pod_view(self, pod: Any, node_zone: str | None = None) -> PodView:
        """`node_zone`: the zone of the pod's node. A pod with a claim is taken to be bound to it
        (an EBS volume is zonal and its pod runs in its zone; listing PVs needs no more RBAC)."""
        spec, md = pod.spec, pod.metadata
        owner = self.owner_of(pod)
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        return PodView(
            namespace=md.namespace,
            name=md.name,
            node=spec.node_name or "",
            owner=owner,
            labels=dict(md.labels or {}),
            ready=ready,
            phase=pod.status.phase or "Pending",
            terminating=md.deletion_timestamp is not None,
            mirror=CONFIG_MIRROR_ANNOTATION in (md.annotations or {}),
            has_emptydir=any(v.empty_dir is not None for v in spec.volumes or []),
            tolerations=tuple(
                Toleration(t.key or "", t.operator or "Equal", t.value or "", t.effect or "")
                for t in spec.tolerations or []
            ),
            node_selector=dict(spec.node_selector or {}),
            redis_group=self.redis_group_of(owner),
            requests=pod_requests(pod),
            zone=node_zone if any(v.persistent_volume_claim for v in spec.volumes or []) else None,
            do_not_disrupt=any((md.annotations or {}).get(k) == "true" for k in DO_NOT_DISRUPT_KEYS),
            disrupt_deadline=(md.annotations or {}).get(DO_NOT_DISRUPT_DEADLINE),
        )

    # --- Redis Cluster temporary pods ----------------------------------------------------------
    def list_pods(self, namespace: str, label_selector: str) -> list[Any]:
        """Pods of one namespace by label (finds a run's temporary Redis pods from Rollback)."""
        with kube_errors(f"list pods in {namespace} ({label_selector})"):
            return list(
                self.core.list_namespaced_pod(
                    namespace, label_selector=label_selector, _request_timeout=self.timeout
                ).items
            )

    # --- Redis under Sentinel: durable notes on a pod ------------------------------------------
    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> bool:
        """Merge annotations into a pod (None removes one). The Sentinel procedure records there
        the replica-priority it changed: the note lives exactly as long as that process.
        False if the pod is gone."""
        body = {"metadata": {"annotations": annotations}}
        try:
            with kube_errors(f"annotate pod {namespace}/{name}"):
                self.core.patch_namespaced_pod(name, namespace, body, _request_timeout=self.timeout)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise


def pod_requests(pod: Any) -> Resources:
    """Sum of the containers' requests (what the scheduler's NodeResourcesFit counts)."""
    total = Resources()
    for c in pod.spec.containers or []:
        req = (c.resources.requests if c.resources else None) or {}
        lim = (c.resources.limits if c.resources else None) or {}
        total += Resources(
            cpu_millis(req.get("cpu", lim.get("cpu"))), memory_bytes(req.get("memory", lim.get("memory")))
        )
    return total


def _taint_body(t: dict[str, Any]) -> dict[str, Any]:
    out = {"key": t["key"], "effect": t["effect"]}
    if t.get("value"):
        out["value"] = t["value"]
    if t.get("time_added"):
        out["timeAdded"] = (
            t["time_added"].strftime("%Y-%m-%dT%H:%M:%SZ")
            if hasattr(t["time_added"], "strftime")
            else t["time_added"]
        )
    return out


def _pdb_view(p: Any) -> PdbView:
    sel = p.spec.selector
    selector: dict[str, Any] | None
    if sel is None:
        selector = None
    else:
        selector = {
            "matchLabels": dict(sel.match_labels or {}),
            "matchExpressions": [
                {"key": e.key, "operator": e.operator, "values": list(e.values or [])}
                for e in sel.match_expressions or []
            ],
        }
    st = p.status
    return PdbView(
        namespace=p.metadata.namespace,
        name=p.metadata.name,
        selector=selector,
        disruptions_allowed=st.disruptions_allowed if st else 0,
        current_healthy=st.current_healthy if st else 0,
        desired_healthy=st.desired_healthy if st else 0,
        expected_pods=st.expected_pods if st else 0,
    )


def kube_ops(settings: Settings, conn: KubeConnection) -> KubeOps:
    return KubeOps(api_client(conn, settings), settings)
