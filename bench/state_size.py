"""State size benchmark (and the model behind tests/contract/test_state_size.py): the largest JSON
each scope of the roll carries, computed from the step models and the ASL's own Parameters.

Step Functions refuses a state's input or output over 256 KiB with `States.DataLimitExceeded`, a
terminal error no `States.ALL` Catch runs on: no Rollback. Users raise the batch size to fit the
history limit, so the states that hold one entry per node of a batch (ReplaceNodes' result) or per
pod (a plan's findings) are where it would break. Names are realistic and long; each node carries
`pods_per_node` evicted pods.

Run: .venv/bin/python bench/state_size.py [--batch 50] [--pods-per-node 100]
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eks_rolling.models import (
    AsgOriginals,
    AutoscalerState,
    DrainNodeOutput,
    EvictedPod,
    ExcludeFromLoadBalancersOutput,
    MoveRedisPodsOutput,
    NodeTarget,
    OwnerRefModel,
    PlanRollOutput,
    RestoreClusterOutput,
    RollbackOutput,
    RollContext,
    TerminateInstanceOutput,
    WaitNewNodesOutput,
    WaitOwnersReadyOutput,
    counted,
)
from eks_rolling.planning import AsgView, ClusterSnapshot, InstanceView, NodeView, OwnerRef, PodView, Policy
from eks_rolling.planning.plan import build_plan, max_nodes_per_execution
from eks_rolling.planning.waves import INLINE_PLAN_BYTES, offloaded, plan_state

# The batches run in the wave machine (a child execution per wave): its ReplaceBatches holds them.
ASL = Path(__file__).resolve().parents[1] / "statemachine" / "roll_wave.asl.json"
LIMIT = 256 * 1024
PLAN_BUCKET = "eks-rolling-plans"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OWNERS_PER_NODE = 30  # distinct ReplicaSets/StatefulSets among a node's pods


def _iid(i: int) -> str:
    return f"i-0{i:016x}"


def _node_name(i: int) -> str:
    return f"ip-10-{i // 250 % 256}-{i % 250}-17.eu-west-1.compute.internal"


def _pod(i: int, j: int) -> tuple[str, str, str]:
    """(namespace, pod, owner ReplicaSet) of pod j on node i."""
    ns = f"payments-platform-team-{j % 7}"
    owner = f"checkout-orchestrator-api-{j % OWNERS_PER_NODE:02d}-7d9f8b6c4"
    return ns, f"{owner}-{i:05x}{j:02x}", owner


def ctx() -> RollContext:
    return RollContext(
        execution_id="arn:aws:states:eu-west-1:123456789012:execution:eks-rolling-prod-eks:"
        "5b8d1a6e-0f5c-4c1e-9b7a-2e3f4a5b6c7d",
        asg_name="prod-eks-general-purpose-workers-eu-west-1a",
        cluster_name="prod-eks",
        taint_value="5b8d1a6e0f5c4c1e9b7a2e3f4a5b6c7d",
    )


def target(i: int, pods_per_node: int) -> NodeTarget:
    return NodeTarget(instance_id=_iid(i), node_name=_node_name(i), az="eu-west-1a", pods=pods_per_node)


def plan_output(
    batch_size: int, pods_per_node: int, nodes: int | None = None, *, emptydir: bool = True
) -> PlanRollOutput:
    """The planner's output for the largest group one execution may roll (or `nodes`), every pod
    a blocker (emptyDir) unless `emptydir` is False, from the real pure planner, as PlanRoll
    returns it: a plan state over the inline limit keeps its waves' batches in S3."""
    n = nodes if nodes is not None else max_nodes_per_execution(batch_size)
    plan = build_plan(_snapshot(n, batch_size, pods_per_node, emptydir), Policy(batch_size=batch_size))
    state = plan_state(plan, ctx().execution_id)
    if len(state.model_dump_json()) > INLINE_PLAN_BYTES:
        state, _ = offloaded(state, PLAN_BUCKET)
    return state


def _snapshot(n: int, batch_size: int, pods_per_node: int, emptydir: bool = False) -> ClusterSnapshot:
    instances = tuple(InstanceView(_iid(i), "eu-west-1a", "InService", True) for i in range(n))
    return ClusterSnapshot(
        AsgView("prod-eks-general-purpose-workers-eu-west-1a", n, 0, n + batch_size, instances, "42"),
        tuple(NodeView(_node_name(i), _iid(i), "eu-west-1a", True) for i in range(n)),
        tuple(
            PodView(
                ns,
                pod,
                _node_name(i),
                OwnerRef("ReplicaSet", ns, owner),
                {"app": owner},
                has_emptydir=emptydir,
            )
            for i in range(n)
            for ns, pod, owner in (_pod(i, j) for j in range(pods_per_node))
        ),
        (),
    )


def wave_input(batch_size: int, pods_per_node: int, nodes: int) -> dict[str, Any]:
    """The largest wave child's state once it read its batches (UseStoredWave): ctx, asg, the
    wave with its batches, the parent link."""
    plan = build_plan(_snapshot(nodes, batch_size, pods_per_node), Policy(batch_size=batch_size))
    state = plan_state(plan, ctx().execution_id)
    biggest = max(state.waves, key=lambda w: size(w.model_dump(mode="json")))
    return _json(
        {
            "ctx": ctx(),
            "asg": AsgOriginals(desired=nodes, min_size=0, max_size=nodes + 50, suspended=["AZRebalance"]),
            "wave": biggest,
            "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": ctx().execution_id,
            "stored": {"batches": biggest.model_dump(mode="json")["batches"]},
        }
    )


def _poll(**fields: Any) -> dict[str, Any]:
    return {"started_at": NOW, "deadline": NOW + timedelta(minutes=15), "attempt": 12, "done": True, **fields}


def node_iteration(i: int, pods_per_node: int) -> dict[str, Any]:
    """One node's state at NodeReplaced: everything its Map iteration accumulated."""
    pods = [_pod(i, j) for j in range(pods_per_node)]
    evicted = [
        EvictedPod(namespace=ns, name=pod, owner=OwnerRefModel(kind="ReplicaSet", namespace=ns, name=owner))
        for ns, pod, owner in pods
    ]
    owners = sorted({f"ReplicaSet/{ns}/{owner}" for ns, _, owner in pods})
    state = {
        "ctx": ctx(),
        "node": target(i, pods_per_node),
        "redis": MoveRedisPodsOutput(**_poll(actions=["no managed Redis pod on this node"])),
        "drain": DrainNodeOutput(**_poll(evicted=evicted)),
        "owners": WaitOwnersReadyOutput(**_poll(owners=owners)),
        "lb": ExcludeFromLoadBalancersOutput(node_name=_node_name(i), wait_s=300),
        "terminated": TerminateInstanceOutput(instance_id=_iid(i), terminated=True),
    }
    return _json(state)


def _json(value: Any) -> Any:
    """Models and datetimes as Step Functions would carry them."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


# --- the ASL's own Parameters, evaluated (the JSONPath and intrinsics it uses) -----------------
_PATH = re.compile(r"\$((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")


def _path(state: Any, path: str) -> Any:
    m = _PATH.fullmatch(path)
    if m is None:
        raise ValueError(f"unsupported path {path!r}")
    for key in filter(None, m.group(1).split(".")):
        state = state[key]
    return state


def parameters(template: dict[str, Any], state: Any) -> dict[str, Any]:
    out = {}
    for key, value in template.items():
        if not key.endswith(".$"):
            out[key] = value
        elif value.startswith("States.ArrayLength(") and value.endswith(")"):
            out[key[:-2]] = len(_path(state, value[len("States.ArrayLength(") : -1]))
        else:
            out[key[:-2]] = _path(state, value)
    return out


def _states(definition: dict[str, Any], *path: str) -> dict[str, Any]:
    states: dict[str, Any] = definition["States"]
    for name in path:
        states = states[name]["ItemProcessor"]["States"]
    return states


def batch_iteration(definition: dict[str, Any], batch_size: int, pods_per_node: int) -> dict[str, Any]:
    """One batch's state after ReplaceNodes: its input plus one NodeReplaced output per node."""
    node_replaced = _states(definition, "ReplaceBatches", "ReplaceNodes")["NodeReplaced"]
    return {
        "ctx": _json(ctx()),
        "asg": _json(AsgOriginals(desired=400, min_size=0, max_size=450, suspended=["AZRebalance"])),
        "batch": [_json(target(i, pods_per_node)) for i in range(batch_size)],
        "wait": _json(WaitNewNodesOutput(**_poll(ready_new_nodes=batch_size))),
        "replaced": [
            parameters(node_replaced["Parameters"], node_iteration(i, pods_per_node))
            for i in range(batch_size)
        ],
    }


def asg_iteration(batch_size: int, pods_per_node: int) -> dict[str, Any]:
    """One ASG's state after RestoreCluster: the plan (with its batches) and what was restored."""
    return _json(
        {
            "ctx": ctx(),
            "error": None,
            "autoscaler": AutoscalerState(namespace="kube-system", name="cluster-autoscaler", found=True),
            "asg": AsgOriginals(desired=400, min_size=0, max_size=450, suspended=["AZRebalance"]),
            "plan": plan_output(batch_size, pods_per_node, nodes=max_nodes_per_execution(batch_size)),
            "restored": RestoreClusterOutput(resumed=["AZRebalance"], untainted=[], notes=["restored"]),
        }
    )


def wait_iteration(batch_size: int, pods_per_node: int, new_instances: int) -> dict[str, Any]:
    """A batch's state after a WaitNewNodes round of a group surged by `new_instances` (waves
    together: every wave waits for all of them), none registered yet."""
    pending = [f"{_iid(10_000 + i)} (eu-west-1a) has not registered as a node" for i in range(new_instances)]
    return _json(
        {
            "ctx": ctx(),
            "asg": AsgOriginals(desired=400, min_size=0, max_size=450, suspended=["AZRebalance"]),
            "batch": [target(i, pods_per_node) for i in range(batch_size)],
            "wait": WaitNewNodesOutput(**_poll(done=False, detail=pending)),
        }
    )


def rollback_iteration(batch_size: int, pods_per_node: int, nodes: int) -> dict[str, Any]:
    """One ASG's state after the Rollback of a failed wave of a roll that ran its waves together:
    every old node untainted, every surge instance given back, every other wave stopped, and the
    wave's error (the child's DescribeExecution) in `$.error`."""
    plan = plan_output(batch_size, pods_per_node, nodes=nodes, emptydir=False)
    wave = plan.waves[0]
    child_cause = {
        "errorType": "EvictionRejectedError",
        "errorMessage": f"eviction of payments-platform-team-0/{_pod(0, 0)[1]} refused: HTTP 403",
        "stackTrace": [
            f'  File "/var/task/eks_rolling/services/drain.py", line {k}, in drain' for k in range(6)
        ],
    }
    describe = {
        "ExecutionArn": f"{ctx().execution_id}:{wave.name}",
        "Input": json.dumps(_json({"ctx": ctx(), "wave": wave})),
        "Status": "FAILED",
        "Error": "EvictionRejectedError",
        "Cause": json.dumps(child_cause),
    }
    return _json(
        {
            "ctx": ctx(),
            "autoscaler": AutoscalerState(namespace="kube-system", name="cluster-autoscaler", found=True),
            "asg": AsgOriginals(desired=nodes, min_size=0, max_size=nodes + 50, suspended=["AZRebalance"]),
            "plan": plan,
            "error": {"Error": "WaveFailedError", "Cause": json.dumps(describe)},
            "rollback": RollbackOutput(
                desired=nodes,
                max_size=nodes + 50,
                resumed=["AZRebalance"],
                **counted("untainted", [_node_name(i) for i in range(nodes)]),
                **counted("terminated_surge", [_iid(10_000 + i) for i in range(nodes)]),
                notes=[f"stopped {ctx().execution_id}:{w.name}" for w in plan.waves[1:]],
                error="EvictionRejectedError",
                cause=json.dumps(child_cause),
            ),
        }
    )


def sizes(
    batch_size: int = 50, pods_per_node: int = 100, definition: dict[str, Any] | None = None
) -> dict[str, int]:
    """Bytes of the largest state of each scope."""
    definition = definition if definition is not None else json.loads(ASL.read_text())
    return {
        "PlanRoll output (every pod a blocker)": size(
            plan_output(batch_size, pods_per_node).model_dump(mode="json")
        ),
        "one node's iteration (DrainNode .. NodeReplaced)": size(node_iteration(0, pods_per_node)),
        "one batch after ReplaceNodes": size(batch_iteration(definition, batch_size, pods_per_node)),
        "one ASG after RestoreCluster": size(asg_iteration(batch_size, pods_per_node)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--pods-per-node", type=int, default=100)
    args = parser.parse_args()
    print(
        f"batch size {args.batch}, {args.pods_per_node} pods per node, "
        f"{max_nodes_per_execution(args.batch)} nodes (the most one execution may roll)"
    )
    for name, n in sizes(args.batch, args.pods_per_node).items():
        print(f"  {name:<52} {n / 1024:8.1f} KiB  ({100 * n / LIMIT:4.1f}% of 256 KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
