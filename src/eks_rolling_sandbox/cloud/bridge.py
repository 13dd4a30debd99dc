"""The cloud side of the sandbox: moto's ASG/EC2 instances become Kubernetes nodes.

A running instance of an ASG tagged `kubernetes.io/cluster/<name>` registers as a Node after
`node_boot_s` (per-instance jitter from the timing profile; NotReady, with the not-ready taint, `spec.providerID aws:///<az>/<id>`, zone and
instance-type labels) and turns Ready after `node_ready_s`. A terminated instance's node goes
Unknown at once (its processes die with it) and is deleted after `node_delete_s`, as the AWS
cloud controller does; PodGC then removes its pods.

moto fidelity fixes (two patched methods, `patch_moto_asg`): instances are launched from the
ASG's configured launch template version and spread over its AZs as a real ASG does, and
terminating an instance the groups no longer hold is AWS's ValidationError, not a 500.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eks_rolling.labels import REDIS_CLUSTER_BUS_PORT, REDIS_PORT, SENTINEL_PORT

from ..api.errors import ApiError
from ..api.objects import MAX_NODE_INDEX, node_object, pod_ip
from ..api.store import Obj, timestamp
from .aws_faults import UNAVAILABLE_AZS

FIRST_NODE_INDEX_ENV = "EKS_ROLLING_SANDBOX_FIRST_NODE_INDEX"
# Redis pods listen on these ports of their pod IP (data, cluster bus, sentinel).
REDIS_PORTS = (REDIS_PORT, REDIS_CLUSTER_BUS_PORT, SENTINEL_PORT)
_PODS_PROBED = 16  # node k's first addresses checked (pod_ip(k, 1-16): the host, then pods)


def address_in_use(ip: str, ports: tuple[int, ...] = REDIS_PORTS) -> bool:
    """Whether a process on this machine listens on one of `ports` of `ip`."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # Like redis: ignore TIME_WAIT leftovers; a live listener still makes bind fail.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise
    return False


def index_in_use(k: int, pods: range = range(1, _PODS_PROBED + 1)) -> bool:
    """Whether anything listens on a Redis port of node k's first pod IPs: another sandbox (a
    parallel test worker, a leaked process) owns that index and its addresses."""
    return any(address_in_use(pod_ip(k, n)) for n in pods)


log = logging.getLogger(__name__)

ACCOUNT = "123456789012"
LABEL_TAG_PREFIX = "k8s.io/cluster-autoscaler/node-template/label/"
TAINT_TAG_PREFIX = "k8s.io/cluster-autoscaler/node-template/taint/"

_patched = False
_patch_lock = threading.Lock()


def patch_moto_asg() -> None:
    """Fidelity fixes to moto's ASG. In its one launch method:
    - launch from the launch template version the ASG is configured with (moto passes no
      version, so instances were built and tagged from the template's *default* version);
    - spread new instances over the ASG's AZs, fewest instances first (moto uses the first subnet);
      an AZ out of capacity (`aws_faults.UNAVAILABLE_AZS`) gets none, as AWS's ASG launches in
      the others after InsufficientInstanceCapacity.
    In TerminateInstanceInAutoScalingGroup: an instance no group holds (a retried call whose
    first try was served after the client gave up) is AWS's ValidationError "Instance Id not
    found - No managed instance found for instance ID ..." (keikoproj/upgrade-manager#25);
    moto's `next()` without a default answered HTTP 500 and failed a 300-node roll.
    And one cost fix in EC2: a resource's tags are a dict lookup, not a regex scan of every tag
    of every resource (moto's `get_tags`), which made DescribeInstances O(instances x all tags):
    11 % of a 1,000-node roll's CPU, where AWS pays nothing of the kind.
    """
    global _patched
    with _patch_lock:
        if _patched:
            return
        from moto.autoscaling.exceptions import ValidationError
        from moto.autoscaling.models import (
            ASG_NAME_TAG,
            AutoScalingBackend,
            FakeAutoScalingGroup,
            InstanceState,
        )

        def replace(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
            propagated_tags[ASG_NAME_TAG] = self.name
            propagated_tags.update(self.instance_tags)
            ec2 = self.autoscaling_backend.ec2_backend
            subnets = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
            az_of = {s: ec2.get_subnet(s).availability_zone for s in subnets}
            launch_template = None
            if self.ec2_launch_template:
                key = "LaunchTemplateId" if self.ec2_launch_template.id else "LaunchTemplateName"
                ident = self.ec2_launch_template.id or self.ec2_launch_template.name
                version = self.ec2_launch_template.get_version(self.launch_template_version).number
                launch_template = {key: ident, "Version": str(version)}
            subnets = [s for s in subnets if az_of[s] not in UNAVAILABLE_AZS]
            if self.vpc_zone_identifier and not subnets:
                log.warning("ASG %s: no AZ has capacity; %d launches wait", self.name, count_needed)
                return
            for _ in range(count_needed):
                per_az = Counter(
                    st.instance.placement.zone for st in self.instance_states if st.instance.is_running()
                )
                subnet = (
                    min(subnets, key=lambda s: (per_az.get(az_of[s], 0), subnets.index(s)))
                    if subnets
                    else None
                )
                reservation = ec2.run_instances(
                    self.image_id,
                    1,
                    self.user_data,
                    self.security_groups,
                    instance_type=self.instance_type,
                    tags={"instance": dict(propagated_tags)},
                    placement=az_of[subnet] if subnet else self.availability_zones[0],
                    launch_config=self.launch_config,
                    launch_template=launch_template,
                    is_instance_type_default=False,
                    associate_public_ip=self.launch_config.associate_public_ip_address
                    if self.launch_config
                    else None,
                    subnet_id=subnet,
                )
                for instance in reservation.instances:
                    instance.autoscaling_group = self
                    self.instance_states.append(
                        InstanceState(
                            instance, protected_from_scale_in=self.new_instances_protected_from_scale_in
                        )
                    )

        moto_terminate = AutoScalingBackend.terminate_instance

        @functools.wraps(moto_terminate)  # __wrapped__: moto's own, for the tests' control
        def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
            held = (st.instance.id for g in self.autoscaling_groups.values() for st in g.instance_states)
            if instance_id not in held:
                raise ValidationError(
                    f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
                )
            return moto_terminate(self, instance_id, should_decrement)

        from moto.ec2.models.core import TaggedEC2Resource
        from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

        moto_get_tags = TaggedEC2Resource.get_tags

        @functools.wraps(moto_get_tags)
        def get_tags(self: Any) -> list[dict[str, str]]:
            if not self.id:
                return []
            kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
            tags = self.ec2_backend.tags.get(self.id, {})
            return [
                {"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()
            ]

        TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
        FakeAutoScalingGroup.replace_autoscaling_group_instances = replace  # type: ignore[method-assign]
        AutoScalingBackend.terminate_instance = terminate_instance  # type: ignore[method-assign]
        _patched = True


def node_name_for(private_ip: str | None, instance_id: str, region: str) -> str:
    if not private_ip:
        return f"{instance_id}.{region}.compute.internal"
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{private_ip.replace('.', '-')}.{suffix}"


@dataclass
class InstanceRecord:
    instance_id: str
    asg: str
    az: str
    node_name: str
    index: int
    first_seen: float
    registered_at: float | None = None
    ready: bool = False
    gone_at: float | None = None


class CloudBridge:
    def __init__(
        self, sandbox: Any, *, cluster_name: str, region: str = "us-east-1", account: str = ACCOUNT
    ) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.timings = sandbox.timings
        self.cluster_name = cluster_name
        self.region, self.account = region, account
        self.records: dict[str, InstanceRecord] = {}
        # Node k's pod IPs are pod_ip(k, n). Two sandboxes running at once on one machine (two test
        # sessions) must not share addresses: a session may start its nodes elsewhere.
        self._next_index = int(os.environ.get(FIRST_NODE_INDEX_ENV) or 1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Fault knob: instances for which this returns True register but never turn Ready.
        self.never_ready: Callable[[Any], bool] | None = None

    def _take_index(self) -> int:
        # A pod IP someone else listens on would answer for our pod: skip that node index.
        while self._next_index <= MAX_NODE_INDEX and index_in_use(self._next_index):
            log.warning("node index %d is in use on this machine; skipping it", self._next_index)
            self._next_index += 1
        if self._next_index > MAX_NODE_INDEX:
            raise RuntimeError(f"no free sandbox node index left (all {MAX_NODE_INDEX} taken)")
        self._next_index += 1
        return self._next_index - 1

    def start(self) -> None:
        patch_moto_asg()
        self._thread = threading.Thread(target=self._loop, name="sandbox-cloud", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.timings.cloud_poll_s):
            try:
                self.sync()
            except Exception:
                log.exception("cloud bridge sync failed")

    # --- the reconciliation ---------------------------------------------------------------------
    def _cluster_instances(self) -> dict[str, tuple[Any, Any]]:
        from moto.autoscaling.models import autoscaling_backends

        backend = autoscaling_backends[self.account][self.region]
        tag = f"kubernetes.io/cluster/{self.cluster_name}"
        out: dict[str, tuple[Any, Any]] = {}
        for group in list(backend.autoscaling_groups.values()):
            if not any(t.get("Key") == tag for t in group.tags):
                continue
            for st in list(group.instance_states):
                inst = st.instance
                if inst.is_running():
                    out[inst.id] = (inst, group)
        return out

    def sync(self) -> None:
        with self._lock:
            now = time.monotonic()
            live = self._cluster_instances()
            for iid, (inst, group) in live.items():
                rec = self.records.get(iid)
                if rec is None:
                    rec = InstanceRecord(
                        iid,
                        group.name,
                        inst.placement.zone,
                        node_name_for(inst.private_ip, iid, self.region),
                        self._take_index(),
                        now,
                    )
                    self.records[iid] = rec
                if rec.gone_at is not None:
                    continue
                if rec.registered_at is None and now >= rec.first_seen + self.timings.jittered(
                    self.timings.node_boot_s, f"{iid}:boot"
                ):
                    self._register(rec, inst, group)
                    rec.registered_at = now
                due = (
                    rec.registered_at is not None
                    and not rec.ready
                    and now
                    >= rec.registered_at + self.timings.jittered(self.timings.node_ready_s, f"{iid}:ready")
                )
                if due and (self.never_ready is None or not self.never_ready(inst)):
                    self._set_ready(
                        rec.node_name,
                        "True",
                        "KubeletReady",
                        "kubelet is posting ready status",
                        instance_id=iid,
                    )
                    rec.ready = True
            for iid, rec in list(self.records.items()):
                if iid in live:
                    continue
                if rec.gone_at is None:
                    rec.gone_at = now
                    if rec.registered_at is not None:
                        self._set_ready(
                            rec.node_name,
                            "Unknown",
                            "NodeStatusUnknown",
                            "Kubelet stopped posting node status.",
                            instance_id=iid,
                        )
                elif now >= rec.gone_at + self.timings.node_delete_s:
                    node = self.store.get("nodes", None, rec.node_name)
                    # The name may already belong to a new instance that reused the private IP.
                    if node is not None and node["spec"].get("providerID", "").endswith("/" + iid):
                        with contextlib.suppress(ApiError):
                            self.store.delete(
                                "nodes", None, rec.node_name, expect_uid=node["metadata"]["uid"]
                            )
                    del self.records[iid]

    def _register(self, rec: InstanceRecord, inst: Any, group: Any) -> None:
        labels: dict[str, str] = {}
        taints: list[Obj] = []
        for t in group.tags:
            key, value = t.get("Key", ""), t.get("Value", "")
            if key.startswith(LABEL_TAG_PREFIX):
                labels[key[len(LABEL_TAG_PREFIX) :]] = value
            elif key.startswith(TAINT_TAG_PREFIX) and ":" in value:
                tv, effect = value.rsplit(":", 1)
                taints.append({"key": key[len(TAINT_TAG_PREFIX) :], "value": tv, "effect": effect})
        node = node_object(
            rec.node_name,
            instance_id=rec.instance_id,
            az=rec.az,
            region=self.region,
            instance_type=inst.instance_type or "m5.large",
            index=rec.index,
            labels=labels,
            taints=taints,
        )
        try:
            self.store.create("nodes", node)
        except ApiError as exc:
            if exc.code != 409:
                raise

    def _set_ready(
        self, node_name: str, status: str, reason: str, message: str, *, instance_id: str | None = None
    ) -> None:
        now = timestamp()

        def mark(cur: Obj) -> Obj:
            if instance_id and not cur["spec"].get("providerID", "").endswith("/" + instance_id):
                return cur  # the name now belongs to another instance
            for c in cur["status"]["conditions"]:
                if c["type"] == "Ready":
                    if c["status"] != status:
                        c["lastTransitionTime"] = now
                    c.update(status=status, reason=reason, message=message, lastHeartbeatTime=now)
            return cur

        with contextlib.suppress(ApiError):
            self.store.mutate("nodes", None, node_name, mark)

    # --- queries for tests and the demo --------------------------------------------------------
    def node_for(self, instance_id: str) -> str | None:
        rec = self.records.get(instance_id)
        return rec.node_name if rec else None
