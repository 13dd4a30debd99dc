"""Built-in scenarios. `field-report` is the production situation the field report describes:
2 AZs, one opted-in ASG whose nodes run an old launch template version, stateless Deployments
behind PDBs (one with 2 of its 3 pods on one node and maxUnavailable 1), an ingress controller,
DaemonSets, Redis under Sentinel and a Redis Cluster (a maxUnavailable 1 PDB per StatefulSet), and
cluster-autoscaler in kube-system.

`bad-ami` is the same cluster whose new launch template version brings an AMI that breaks an
application: `BadAmiAlarm` watches the cluster and sets a CloudWatch alarm (moto's) to ALARM while a
pod of the shop runs on a node of that AMI, and back to OK when none does.

Upstream: none; the field report describes the production cluster it reproduces.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eks_rolling.labels import (
    AWS_LB_DEREGISTRATION_DELAY,
    AWS_LB_HC_HEALTHY,
    AWS_LB_HC_INTERVAL,
    AWS_LB_HC_UNHEALTHY,
    AWS_LB_TARGET_TYPE,
    AWS_LB_TG_ATTRIBUTES,
    TAG_OPT_IN,
)

from . import manifests as m
from .api.objects import node_is_ready, pod_is_ready
from .api.store import Obj
from .cloud.alarms import create_alarm
from .env import SandboxEnv
from .redis.manifests import init_redis_cluster, redis_cluster, sentinel_group

log = logging.getLogger(__name__)

OLD_AMI = "ami-0e1c5d2b6f1a0e129"  # "EKS 1.29 AL2023" stand-in
NEW_AMI = "ami-0f3a7c9d5e2b1a132"  # "EKS 1.32 AL2023" stand-in
SETUP_TAINT = "sandbox.eks-rolling.io/setup"


@dataclass
class WorkloadSpec:
    namespace: str
    name: str
    replicas: int
    pdb_min_available: int  # what the PDB guarantees, as a pod count


@dataclass
class Scenario:
    env: SandboxEnv
    asg_name: str
    launch_template_id: str
    azs: tuple[str, ...]
    old_ami: str = OLD_AMI
    new_ami: str = NEW_AMI
    deployments: list[WorkloadSpec] = field(default_factory=list)
    crowded: tuple[str, str] = ("shop", "api")  # the Deployment with 2 pods on one node
    autoscaler: tuple[str, str] = ("kube-system", "cluster-autoscaler")
    redis: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def bump_launch_template(
        self, *, image_id: str | None = None, user: str = "platform-engineer", instance_type: str = "m5.large"
    ) -> dict[str, Any]:
        """Create a new launch template version and point the ASG at it, as an operator would;
        return the EventBridge event the CloudTrail rule would deliver."""
        ec2, asg = self.env.aws("ec2"), self.env.aws("autoscaling")
        lt = ec2.create_launch_template_version(
            LaunchTemplateId=self.launch_template_id,
            SourceVersion="1",
            LaunchTemplateData={"ImageId": image_id or self.new_ami, "InstanceType": instance_type},
        )["LaunchTemplateVersion"]
        version = str(lt["VersionNumber"])
        asg.update_auto_scaling_group(
            AutoScalingGroupName=self.asg_name,
            LaunchTemplate={"LaunchTemplateId": self.launch_template_id, "Version": version},
        )
        return cloudtrail_update_asg_event(
            self.asg_name, self.launch_template_id, version, region=self.env.region, user=user
        )

    def add_nodes(self, per_zone: int = 1, timeout: float = 30.0) -> list[str]:
        """Grow the ASG by `per_zone` instances per AZ (raising MaxSize if needed), as a surge
        does; return the new nodes once Ready."""
        asg = self.env.aws("autoscaling")
        store = self.env.sandbox.store
        before = {n["metadata"]["name"] for n in store.all("nodes")}
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])["AutoScalingGroups"][
            0
        ]
        want = group["DesiredCapacity"] + per_zone * len(self.azs)
        asg.update_auto_scaling_group(
            AutoScalingGroupName=self.asg_name, MaxSize=max(want, group["MaxSize"]), DesiredCapacity=want
        )

        def ready() -> list[str]:
            return [
                n["metadata"]["name"]
                for n in store.all("nodes")
                if n["metadata"]["name"] not in before and node_is_ready(n)
            ]

        self.env.sandbox.wait_for(
            lambda: len(ready()) == per_zone * len(self.azs), timeout=timeout, what="new nodes"
        )
        return ready()


def cloudtrail_update_asg_event(
    asg_name: str, lt_id: str, version: str, *, region: str, user: str = "platform-engineer"
) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request_id = str(uuid.uuid4())
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": now,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": f"arn:aws:iam::123456789012:user/{user}",
                "accountId": "123456789012",
                "userName": user,
            },
            "eventTime": now,
            "eventSource": "autoscaling.amazonaws.com",
            "eventName": "UpdateAutoScalingGroup",
            "awsRegion": region,
            "sourceIPAddress": "192.0.2.10",
            "userAgent": "aws-cli/2.22.0",
            "requestParameters": {
                "autoScalingGroupName": asg_name,
                "launchTemplate": {"launchTemplateId": lt_id, "version": version},
            },
            "responseElements": None,
            "requestID": request_id,
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": "123456789012",
            "eventCategory": "Management",
        },
    }


def _network(env: SandboxEnv, azs: tuple[str, ...], *, wide: bool = False) -> list[str]:
    """One subnet per AZ: /24s (10.0.1.0, 10.0.2.0, ...), or /20s when `wide` (a roll of
    hundreds of nodes: moto hands out subnet addresses and refuses a launch when they run out)."""
    ec2 = env.aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    cidrs = [f"10.0.{16 * (i + 1)}.0/20" if wide else f"10.0.{i + 1}.0/24" for i in range(len(azs))]
    return [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in zip(cidrs, azs, strict=True)
    ]


def _node_group(
    env: SandboxEnv,
    name: str,
    subnets: list[str],
    *,
    desired: int,
    min_size: int,
    max_size: int,
    ami: str,
    opted_in: bool,
    labels: dict[str, str],
    taints: dict[str, str] | None = None,
) -> str:
    ec2, asg = env.aws("ec2"), env.aws("autoscaling")
    lt_id = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami, "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    tags = [
        {"Key": f"kubernetes.io/cluster/{env.cluster_name}", "Value": "owned", "PropagateAtLaunch": True},
        {"Key": "k8s.io/cluster-autoscaler/enabled", "Value": "true", "PropagateAtLaunch": False},
        {
            "Key": f"k8s.io/cluster-autoscaler/{env.cluster_name}",
            "Value": "owned",
            "PropagateAtLaunch": False,
        },
        {"Key": "Name", "Value": f"{env.cluster_name}-{name}", "PropagateAtLaunch": True},
    ]
    tags += [
        {"Key": f"k8s.io/cluster-autoscaler/node-template/label/{k}", "Value": v, "PropagateAtLaunch": False}
        for k, v in labels.items()
    ]
    tags += [
        {"Key": f"k8s.io/cluster-autoscaler/node-template/taint/{k}", "Value": v, "PropagateAtLaunch": False}
        for k, v in (taints or {}).items()
    ]
    if opted_in:
        tags.append({"Key": TAG_OPT_IN, "Value": "true", "PropagateAtLaunch": False})
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateId": lt_id, "Version": "1"},
        VPCZoneIdentifier=",".join(subnets),
        Tags=[{**t, "ResourceId": name, "ResourceType": "auto-scaling-group"} for t in tags],
    )
    return str(lt_id)


def wait_nodes_ready(env: SandboxEnv, count: int, timeout: float = 20.0) -> None:
    env.sandbox.wait_for(
        lambda: sum(1 for n in env.sandbox.store.all("nodes") if node_is_ready(n)) >= count,
        timeout=timeout,
        what=f"{count} Ready nodes",
    )


def wait_workloads_ready(env: SandboxEnv, timeout: float = 30.0) -> None:
    def ready() -> bool:
        store = env.sandbox.store
        for d in store.all("deployments"):
            if (d.get("status") or {}).get("readyReplicas", 0) < d["spec"].get("replicas", 1):
                return False
        for s in store.all("statefulsets"):
            if (s.get("status") or {}).get("readyReplicas", 0) < s["spec"].get("replicas", 1):
                return False
        for ds in store.all("daemonsets"):
            st = ds.get("status") or {}
            if st.get("numberReady", 0) < st.get("desiredNumberScheduled", 0):
                return False
        return all(p["status"].get("phase") != "Pending" for p in store.all("pods"))

    env.sandbox.wait_for(ready, timeout=timeout, what="workloads ready")


def field_report(
    env: SandboxEnv,
    *,
    redis: bool = True,
    redis_kinds: tuple[str, ...] = ("sentinel", "cluster"),
    old_nodes: int = 6,
    system_nodes: int = 2,
    max_size: int = 8,
) -> Scenario:
    """Build the field-report cluster on a started `SandboxEnv`. Takes a few seconds."""
    t0 = time.monotonic()
    sb = env.sandbox
    azs = (f"{env.region}a", f"{env.region}b")
    subnets = _network(env, azs)
    env.aws("eks").create_cluster(
        name=env.cluster_name,
        version="1.32",
        roleArn="arn:aws:iam::123456789012:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": subnets},
    )
    _node_group(
        env,
        "eks-system",
        subnets,
        desired=system_nodes,
        min_size=system_nodes,
        max_size=system_nodes,
        ami=OLD_AMI,
        opted_in=False,
        labels={"role": "system"},
        taints={"CriticalAddonsOnly": "true:NoSchedule"},
    )
    lt_id = _node_group(
        env,
        "eks-workers",
        subnets,
        desired=old_nodes,
        min_size=max(old_nodes // 2, 1),
        max_size=max_size,
        ami=OLD_AMI,
        opted_in=True,
        labels={"role": "worker"},
    )
    wait_nodes_ready(env, old_nodes + system_nodes)

    system: Obj = {
        "nodeSelector": {"role": "system"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
    }
    workers: Obj = {"nodeSelector": {"role": "worker"}}
    for ns in ("shop", "ingress-nginx"):
        sb.apply(m.namespace(ns))
    for name in ("aws-node", "kube-proxy"):
        sb.apply(m.daemonset(name, "kube-system"))
    sb.apply(m.deployment("cluster-autoscaler", "kube-system", 1, **system))
    sb.apply(m.deployment("coredns", "kube-system", 2, labels={"k8s-app": "kube-dns"}, **system))
    sb.apply(m.pdb("coredns", "kube-system", selector={"k8s-app": "kube-dns"}, max_unavailable=1))

    # The field report's hazard: a 3-replica Deployment with 2 pods on one node. Make it happen
    # the way it happens in life: the pods were scheduled while only two nodes had room.
    worker_nodes = sorted(
        n["metadata"]["name"]
        for n in sb.store.all("nodes")
        if (n["metadata"].get("labels") or {}).get("role") == "worker"
    )
    held = worker_nodes[2:]
    for name in held:
        _set_setup_taint(env, name, add=True)
    sb.apply(m.deployment("api", "shop", 3, **workers))
    sb.wait_for(
        lambda: len([p for p in sb.pods("shop", "app=api") if pod_is_ready(p)]) == 3,
        timeout=20,
        what="shop/api ready",
    )
    for name in held:
        _set_setup_taint(env, name, add=False)
    deployments = [
        WorkloadSpec("shop", "api", 3, 2),
        WorkloadSpec("shop", "worker", 4, 3),
        WorkloadSpec("shop", "web", 2, 1),
        WorkloadSpec("ingress-nginx", "ingress-nginx-controller", 2, 1),
    ]
    sb.apply(m.pdb("api", "shop", selector={"app": "api"}, max_unavailable=1))
    sb.apply(m.deployment("worker", "shop", 4, **workers))
    sb.apply(m.pdb("worker", "shop", selector={"app": "worker"}, min_available="75%"))
    sb.apply(m.deployment("web", "shop", 2, **workers))
    sb.apply(m.pdb("web", "shop", selector={"app": "web"}, min_available=1))
    sb.apply(m.service("web", "shop", selector={"app": "web"}))
    # The Service first: a process runtime (traffic.http_pods) serves the pods it selects. Its
    # load balancer's settings are the AWS Load Balancer Controller's annotations, with the
    # deregistration delay the tool waits (DEMO_SETTINGS) and 10 s / 2 / 2 health checks.
    ingress_svc = m.service(
        "ingress-nginx-controller",
        "ingress-nginx",
        selector={"app.kubernetes.io/name": "ingress-nginx"},
        type_="LoadBalancer",
    )
    ingress_svc["metadata"]["annotations"] = {
        AWS_LB_TARGET_TYPE: "instance",
        AWS_LB_HC_INTERVAL: "10",
        AWS_LB_HC_HEALTHY: "2",
        AWS_LB_HC_UNHEALTHY: "2",
        AWS_LB_TG_ATTRIBUTES: f"{AWS_LB_DEREGISTRATION_DELAY}=10",
    }
    sb.apply(ingress_svc)
    ingress = m.deployment(
        "ingress-nginx-controller",
        "ingress-nginx",
        2,
        labels={"app.kubernetes.io/name": "ingress-nginx"},
        terminationGracePeriodSeconds=30,
        **workers,
    )
    # preStop sleep: the pod keeps serving while endpoints and load balancers stop sending to it
    ingress["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": 5}}}
    sb.apply(ingress)
    sb.apply(
        m.pdb(
            "ingress-nginx-controller",
            "ingress-nginx",
            selector={"app.kubernetes.io/name": "ingress-nginx"},
            min_available=1,
        )
    )
    scenario = Scenario(
        env=env,
        asg_name="eks-workers",
        launch_template_id=lt_id,
        azs=azs,
        deployments=deployments,
        redis=redis,
    )
    if redis:
        _redis(env, scenario, redis_kinds)
    wait_workloads_ready(env)
    log.info("field-report scenario up in %.1fs", time.monotonic() - t0)
    scenario.extras["setup_s"] = round(time.monotonic() - t0, 2)
    return scenario


def _redis(env: SandboxEnv, scenario: Scenario, kinds: tuple[str, ...]) -> None:
    sb = env.sandbox
    sb.apply(m.namespace("redis"))
    # maxUnavailable 1 on every Redis StatefulSet, as a careful operator sets them: the Redis
    # steps evict through them (and wait while one is at its budget) like any drain.
    if "sentinel" in kinds:
        for obj in sentinel_group(namespace="redis", name="redis", pdb_max_unavailable=1):
            sb.apply(obj)
    if "cluster" in kinds:
        for obj in redis_cluster(
            namespace="redis", name="redis-cluster", zones=scenario.azs, pdb_max_unavailable=1
        ):
            sb.apply(obj)
        scenario.extras["redis_cluster"] = init_redis_cluster(sb, "redis", "redis-cluster")


def _set_setup_taint(env: SandboxEnv, node: str, *, add: bool) -> None:
    def change(cur: dict[str, Any]) -> dict[str, Any]:
        taints = [t for t in cur["spec"].get("taints") or [] if t["key"] != SETUP_TAINT]
        if add:
            taints.append({"key": SETUP_TAINT, "effect": "NoSchedule"})
        cur["spec"]["taints"] = taints
        return cur

    env.sandbox.store.mutate("nodes", None, node, change)


SCENARIOS = {"field-report": field_report}


def describe(scenario: Scenario) -> str:
    return json.dumps(
        {
            "asg": scenario.asg_name,
            "azs": scenario.azs,
            "deployments": [d.__dict__ for d in scenario.deployments],
        },
        indent=2,
    )


# --- bad-ami ----------------------------------------------------------------------------------
BAD_AMI = "ami-0bad0a1b2c3d4e5f6"  # the new version's AMI: the shop's pods fail on it
BAD_AMI_ALARM = "shop-5xx"
BAD_AMI_APP_NAMESPACE = "shop"


class BadAmiAlarm:
    """A real signal from the cluster, not a timer: every `poll_s` (real seconds, a sandbox
    watcher's, nothing the runtime is calibrated on) read the pods and nodes from the store and
    each new node's AMI from EC2; while a Ready pod of the shop runs on a node of `bad_ami`, the
    alarm is ALARM (moto's set_alarm_state), else OK. It records every change."""

    def __init__(
        self, env: SandboxEnv, bad_ami: str = BAD_AMI, alarm: str = BAD_AMI_ALARM, poll_s: float = 0.2
    ):
        self.env, self.bad_ami, self.alarm, self.poll_s = env, bad_ami, alarm, poll_s
        self.state = "OK"
        self.changes: list[tuple[float, str, str]] = []  # (time, state, reason)
        self._ami: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bad-ami-alarm", daemon=True)

    def start(self) -> BadAmiAlarm:
        create_alarm(self.env.aws("cloudwatch"), self.alarm, reason="no shop pod on a bad node")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> BadAmiAlarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bad_pods(self) -> list[str]:
        """`namespace/pod on node` for each Ready shop pod on a node of the bad AMI."""
        store = self.env.sandbox.store
        nodes = {
            n["metadata"]["name"]: n["spec"].get("providerID", "").rsplit("/", 1)[-1]
            for n in store.all("nodes")
        }
        unknown = [i for i in nodes.values() if i.startswith("i-") and i not in self._ami]
        if unknown:
            for r in self.env.aws("ec2").describe_instances(InstanceIds=unknown)["Reservations"]:
                for inst in r["Instances"]:
                    self._ami[inst["InstanceId"]] = inst.get("ImageId", "")
        bad = {name for name, iid in nodes.items() if self._ami.get(iid) == self.bad_ami}
        return [
            f"{p['metadata']['namespace']}/{p['metadata']['name']} on {p['spec']['nodeName']}"
            for p in self.env.sandbox.pods(BAD_AMI_APP_NAMESPACE)
            if p["spec"].get("nodeName") in bad and pod_is_ready(p)
        ]

    def _run(self) -> None:
        cw = self.env.aws("cloudwatch")
        while not self._stop.wait(self.poll_s):
            try:
                bad = self.bad_pods()
            except Exception:  # the sandbox stopping under us: the next round (or stop) decides
                log.debug("bad-ami watcher round failed", exc_info=True)
                continue
            want = "ALARM" if bad else "OK"
            if want != self.state:
                reason = (
                    f"{len(bad)} shop pod(s) failing on {self.bad_ami}: {', '.join(bad[:3])}"
                    if bad
                    else "no shop pod on a bad node"
                )
                cw.set_alarm_state(AlarmName=self.alarm, StateValue=want, StateReason=reason[:1000])
                self.state = want
                self.changes.append((time.time(), want, reason))
                log.info("alarm %s -> %s (%s)", self.alarm, want, reason)


def bad_ami(env: SandboxEnv, **kwargs: Any) -> Scenario:
    """The field-report cluster plus a DaemonSet of the shop on every worker (its log agent: a
    pod of the shop lands on each new node at once, whatever the drain moves) and the alarm
    BadAmiAlarm drives. Bump the launch template with `image_id=BAD_AMI`."""
    scenario = field_report(env, **kwargs)
    env.sandbox.apply(
        m.daemonset("log-agent", BAD_AMI_APP_NAMESPACE, tolerate_all=False, labels={"app": "log-agent"})
    )
    wait_workloads_ready(env)
    scenario.new_ami = BAD_AMI
    scenario.extras["alarm"] = BAD_AMI_ALARM
    return scenario
