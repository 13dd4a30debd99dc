"""MoveRedisPods: before an old node is drained, its Redis pods are moved by procedures that know
Sentinel and Redis Cluster. Each invocation advances one pod by one phase (so every action is in
the execution history); a per-group lock keeps two nodes of one batch from moving pods of the
same group at once (one shard's master in flight at a time, one sentinel reset at a time).

PROCEDURES lists the procedure of each group kind (the sentinel/ and cluster/ packages, each
split into reading the group, deciding, and acting); procedure.py holds what they share: the
environment, a round's vocabulary (Wait, Act, Abort -> Advance) and the plan-time health.
"""

from __future__ import annotations

import logging

from ...aws.clients import aws_client
from ...aws.eks_auth import write_pem_file
from ...aws.lock import AsgLock
from ...aws.secrets import secret_password
from ...errors import RollInProgressError
from ...k8s import KubeOps
from ...metrics import redis_round
from ...models import MoveRedisPodsInput, MoveRedisPodsOutput, PollState, RedisMove, RollContext
from ...redis.connection import resolve_auth
from ...redis.discovery import RedisGroup, discover_groups
from ..deps import Deps
from .cluster import ClusterProcedure
from .procedure import GroupHealth, Procedure, RedisEnv
from .sentinel import SentinelProcedure

log = logging.getLogger(__name__)
GROUP_LOCK_TTL_S = 3600


# One procedure per group kind, listed here rather than registered on import, so that the
# package imports its procedures and they import only procedure.py.
PROCEDURES: dict[str, Procedure] = {p.kind: p for p in (SentinelProcedure(), ClusterProcedure())}


def groups_of(kube: KubeOps) -> list[RedisGroup]:
    return discover_groups(kube.list_statefulsets())


def env_for(group: RedisGroup, ctx: RollContext, deps: Deps) -> RedisEnv:
    kube = deps.kube(ctx.cluster_name)
    auth = resolve_auth(
        group,
        read_k8s_secret=kube.read_secret,
        read_sm_secret=lambda arn: secret_password(aws_client("secretsmanager", deps.settings), arn),
        write_ca=lambda pem: write_pem_file(pem.encode()),
    )
    return RedisEnv(ctx, deps, kube, group, auth, deps.now(), deps.settings)


def _group_lock(deps: Deps) -> AsgLock:
    return AsgLock(aws_client("dynamodb", deps.settings), deps.settings.lock_table, scope="redis")


def _moves_on_node(kube: KubeOps, node: str, groups: list[RedisGroup]) -> list[RedisMove]:
    by_sts = {(g.namespace, sts): g for g in groups for sts in g.statefulsets}
    if not by_sts:
        return []
    moves = []
    for raw in kube.pods_on_node(node):
        # A managed Redis pod's own controller is its StatefulSet: no other pod's owner is read
        # (a ReplicaSet GET per stateless pod of every node was 5 % of a 1,000-node roll's CPU).
        ref = next((r for r in raw.metadata.owner_references or [] if r.controller), None)
        if ref is None or ref.kind != "StatefulSet" or raw.metadata.deletion_timestamp is not None:
            continue
        g = by_sts.get((raw.metadata.namespace, ref.name))
        if g is None:
            continue
        moves.append(
            RedisMove(
                namespace=g.namespace,
                group=g.name,
                kind=g.kind,
                pod=raw.metadata.name,
                role=g.statefulsets[ref.name],
                statefulset=ref.name,
                data={"uid": raw.metadata.uid, "node": node, "ip": raw.status.pod_ip},
            )
        )
    return sorted(moves, key=lambda m: (PROCEDURES[m.kind].order(m), m.pod))


def move_redis_pods(inp: MoveRedisPodsInput, deps: Deps) -> MoveRedisPodsOutput:
    ctx, target, s = inp.ctx, inp.node, deps.settings
    now = deps.now()
    started, deadline, attempt = PollState.begin(inp.redis, now, s.redis_phase_timeout_s)
    if not s.redis_enabled or target.node_name is None:
        return MoveRedisPodsOutput(
            started_at=started, deadline=deadline, attempt=attempt, done=True, next_wait_s=0
        )
    kube = deps.kube(ctx.cluster_name)
    groups = groups_of(kube)
    moves = list(inp.redis.moves) if inp.redis else _moves_on_node(kube, target.node_name, groups)
    current = next((m for m in moves if not m.done), None)
    if current is None:
        return MoveRedisPodsOutput(
            started_at=started, deadline=deadline, attempt=attempt, done=True, next_wait_s=0, moves=moves
        )
    group = next(g for g in groups if g.namespace == current.namespace and g.name == current.group)
    lock, owner = _group_lock(deps), f"{ctx.execution_id}#{target.instance_id}"
    try:
        lock.acquire(group.ref, owner, ttl_s=GROUP_LOCK_TTL_S, now=now.timestamp())
    except RollInProgressError as exc:
        # Another node of this batch is moving a pod of the same group: take turns.
        return MoveRedisPodsOutput(
            started_at=started,
            deadline=deadline,
            attempt=attempt,
            done=False,
            next_wait_s=max(1, min(s.poll_interval_s, 5)),
            moves=moves,
            detail=[str(exc)],
        )
    adv = PROCEDURES[current.kind].advance(current, env_for(group, ctx, deps))
    moves = [adv.move if m.pod == current.pod and m.namespace == current.namespace else m for m in moves]
    redis_round(ctx, current, adv.move, moves)
    if adv.move.done:
        lock.release(group.ref, owner)
        log.info("moved redis pod %s off %s", current.ref, target.node_name)
    done = all(m.done for m in moves)
    pending = [f"{m.ref} ({m.role}) at {m.phase}" for m in moves if not m.done]
    return MoveRedisPodsOutput(
        started_at=started,
        deadline=deadline,
        attempt=attempt,
        done=done,
        next_wait_s=0 if done else (0 if adv.move.done else adv.wait_s),
        moves=moves,
        actions=[f"{current.ref}: {a}" for a in adv.actions],
        detail=pending,
    )


def redis_health(ctx: RollContext, deps: Deps, groups: list[RedisGroup]) -> dict[str, GroupHealth]:
    out = {}
    for g in groups:
        if g.problems:
            out[g.ref] = GroupHealth(problems=list(g.problems))
        elif g.kind not in PROCEDURES:
            out[g.ref] = GroupHealth(problems=[f"no procedure for Redis kind {g.kind}"])
        else:
            out[g.ref] = PROCEDURES[g.kind].health(env_for(g, ctx, deps))
    return out


def redis_cleanup(ctx: RollContext, deps: Deps) -> list[str]:
    """Every group: the procedure's cleanup, then this execution's group locks released."""
    if not deps.settings.redis_enabled:
        return []
    kube = deps.kube(ctx.cluster_name)
    notes: list[str] = []
    lock = _group_lock(deps)
    for g in groups_of(kube):
        proc = PROCEDURES.get(g.kind)
        if proc is not None and not g.problems:
            notes += proc.cleanup(env_for(g, ctx, deps))
        holder = lock.holder(g.ref)
        if holder and holder.startswith(ctx.execution_id + "#"):
            lock.release(g.ref, holder)
            notes.append(f"released the lock of Redis group {g.ref}")
    return notes
