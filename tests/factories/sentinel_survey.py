"""Builders for the Sentinel procedure's pure decisions: a Survey made of values (no network, no
process) of a healthy group, that a test bends into the case it checks, and the Round a phase
decision is given. The group: master m (MASTER), replicas r0 and r1, sentinels s0, s1, s2."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from eks_rolling.labels import REDIS_PORT, SENTINEL_PORT
from eks_rolling.models import RedisMove
from eks_rolling.redis.sentinel import ReplicaLink, Replication, SentinelReplica, SentinelView
from eks_rolling.services.redis.sentinel.decide import STEER_PRIORITY, Round
from eks_rolling.services.redis.sentinel.model import SentinelMoveState
from eks_rolling.services.redis.sentinel.survey import Pod, Survey

MASTER, R0, R1 = "cache-master-0", "cache-replica-0", "cache-replica-1"
S0, S1, S2 = "cache-sentinel-0", "cache-sentinel-1", "cache-sentinel-2"
IPS = {
    MASTER: "10.0.0.10",
    R0: "10.0.0.11",
    R1: "10.0.0.12",
    S0: "10.0.1.10",
    S1: "10.0.1.11",
    S2: "10.0.1.12",
}
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()
OFFSET = 1_000_000
QUORUM_OK = "OK 3 usable Sentinels. Quorum and failover authorization can be reached"


def pod(name: str, **over: object) -> Pod:
    role = "sentinel" if "sentinel" in name else ("master" if "master" in name else "replica")
    base = Pod(
        name=name,
        role=role,
        uid=f"uid-{name}",
        ip=IPS[name],
        port=SENTINEL_PORT if role == "sentinel" else REDIS_PORT,
        node=f"old-{name}",
        ready=True,
        terminating=False,
        retiring=False,
        annotations={},
    )
    return replace(base, **over)  # type: ignore[arg-type]


def as_master(replicas: list[Pod], offset: int = OFFSET) -> Replication:
    links = tuple(ReplicaLink(p.ip or "", p.port, "online", offset, 0) for p in replicas)
    return Replication("master", offset, replicas=links)


def as_replica(
    master: Pod, offset: int = OFFSET, *, link_up: bool = True, syncing: bool = False
) -> Replication:
    return Replication("slave", offset, (master.ip or "", master.port), link_up, syncing)


def view(
    sentinel: Pod,
    master: Pod,
    replicas: list[Pod],
    peers: list[Pod],
    *,
    info_refresh_ms: int = 5_000,
    priorities: dict[str, int] | None = None,
    flags: frozenset[str] = frozenset({"master"}),
    quorum: str = QUORUM_OK,
    extra_replicas: tuple[str, ...] = (),
) -> SentinelView:
    prio = priorities or {}
    listed = tuple(
        SentinelReplica(p.ip or "", p.port, frozenset({"slave"}), prio.get(p.name, 100), True, 300)
        for p in replicas
    ) + tuple(
        SentinelReplica(ip, REDIS_PORT, frozenset({"slave", "s_down"}), 100, False) for ip in extra_replicas
    )
    return SentinelView(
        address=(sentinel.ip or "", sentinel.port),
        master=(master.ip or "", master.port),
        master_flags=flags,
        num_other_sentinels=len(peers),
        info_refresh_ms=info_refresh_ms,
        replicas=listed,
        peers=tuple((p.ip or "", p.port) for p in peers),
        quorum=quorum,
    )


def group(*replaced: Pod, master: str = MASTER) -> Survey:
    """A healthy group whose master is `master`; `replaced` pods replace theirs by name. Every read is
    filled: the master lists its replicas online, replicas follow it with no lag, every
    sentinel names it, lists its replicas (priority 100) and the other sentinels, quorum OK."""
    pods = {p.name: p for p in replaced}
    all_pods = {n: pods.get(n, pod(n)) for n in (MASTER, R0, R1, S0, S1, S2)}
    m = all_pods[master]
    data = [p for p in all_pods.values() if p.role != "sentinel"]
    sentinels = [p for p in all_pods.values() if p.role == "sentinel"]
    replicas = [p for p in data if p.name != master]
    repl: dict[str, Replication | Exception] = {
        p.name: as_master(replicas) if p.name == master else as_replica(m) for p in data
    }
    views: dict[str, SentinelView | Exception] = {
        s.name: view(s, m, replicas, [o for o in sentinels if o.name != s.name]) for s in sentinels
    }
    return Survey(all_pods, repl, views, {p.name: 100 for p in data})


def steered(sv: Survey, target: str, *, info_refresh_ms: int = 5_000) -> Survey:
    """`sv` once every sentinel sees `target` with the steering priority."""
    m = sv.master()
    assert m is not None
    replicas = [p for p in sv.data_pods if p.name != m.name]
    for s in sv.sentinel_pods:
        peers = [o for o in sv.sentinel_pods if o.name != s.name]
        sv.views[s.name] = view(
            s, m, replicas, peers, priorities={target: STEER_PRIORITY}, info_refresh_ms=info_refresh_ms
        )
    sv.prios[target] = STEER_PRIORITY
    return sv


def a_round(
    sv: Survey,
    name: str,
    phase: str = "start",
    *,
    now: float = NOW,
    failback: bool = True,
    **state: object,
) -> Round:
    p = sv.pods.get(name) or pod(name)
    move = RedisMove(
        namespace="redis",
        group="cache",
        kind="sentinel",
        pod=name,
        role=p.role,
        statefulset=name.rsplit("-", 1)[0],
        phase=phase,
        data={"uid": f"uid-{name}", "node": p.node, "ip": p.ip, **state},
    )
    return Round(move, SentinelMoveState.of(move), sv, now, "mymaster", failback)
