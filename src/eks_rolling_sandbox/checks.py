"""What a finished roll left changed, read from the sandbox: the "everything restored" of the e2e
tests and of the roll-scale bench (an empty list when it was)."""

from __future__ import annotations

from eks_rolling.aws.asg import AsgOps, AsgState
from eks_rolling.k8s.ops import instance_id_of
from eks_rolling.labels import TAINT_RETIRING

from .env import SandboxEnv


def tainted_in_group(env: SandboxEnv, state: AsgState, key: str) -> list[str]:
    """Nodes carrying `key` whose instance is still in the group (`state`, as described now). A
    replaced node's Node object outlives its instance (the cloud controller deletes it) and
    RestoreCluster leaves its marks."""
    live = {i.instance_id for i in state.instances if not i.lifecycle_state.startswith("Terminat")}
    return [
        n["metadata"]["name"]
        for n in env.sandbox.store.all("nodes")
        if any(t["key"] == key for t in n["spec"].get("taints") or [])
        and instance_id_of(n["spec"].get("providerID")) in live
    ]


def leftovers(
    env: SandboxEnv,
    asg_name: str,
    before: AsgState,
    *,
    desired: bool = False,
    autoscaler: tuple[str, str, int] | None = None,
) -> list[str]:
    """Suspended processes, MaxSize not back, (with `desired`) the desired capacity not back,
    (with `autoscaler`: namespace, name, replicas before) cluster-autoscaler not back, a node of
    the group still tainted, the run's saved-originals tags, the lock held."""
    after = AsgOps(env.aws("autoscaling"), env.aws("ec2")).describe(asg_name)
    out = [f"suspended {p}" for p in after.suspended_processes]
    if after.max_size != before.max_size:
        out.append(f"max size {after.max_size} (was {before.max_size})")
    if desired and after.desired != before.desired:
        out.append(f"desired {after.desired} (was {before.desired})")
    if autoscaler is not None:
        ns, name, replicas = autoscaler
        d = env.sandbox.store.get("deployments", ns, name)
        now = int(d["spec"]["replicas"]) if d else None
        if now != replicas:
            out.append(f"cluster-autoscaler at {now} (was {replicas})")
    out += [f"node {n} tainted" for n in tainted_in_group(env, after, TAINT_RETIRING)]
    out += [f"tag {k}" for k in after.tags if k.startswith("eks-rolling/saved/")]
    if env.aws("dynamodb").scan(TableName=env.lock_table)["Count"]:
        out.append("lock held")
    return out
