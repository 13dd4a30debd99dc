"""Builders for the Redis Cluster phase decisions: a Survey made of values (pods and every node's
answers, no probe: what a test does not give is "not surveyed") and a Round of one phase of the
move of master A (cache-0, slots 0-5460) through the temporary node T. The views come from
cluster_views.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from eks_rolling.labels import REDIS_PORT
from eks_rolling.models import RedisMove
from eks_rolling.redis.cluster import NodeEntry
from eks_rolling.services.redis.cluster.checks import myself
from eks_rolling.services.redis.cluster.decide import Round
from eks_rolling.services.redis.cluster.model import ClusterMoveState
from eks_rolling.services.redis.cluster.survey import Pod, Survey
from tests.factories.cluster_views import IPS, NAMES, SLOTS_A, A, B, C, D, E, F, T, healthy_entries, views

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
WALL = 1_800_000_000.0  # real seconds since the epoch (the failovers' timers)
RUN = "run-1"
TEMP = NAMES[T]
MEMBERS = [A, B, C, D, E, F]
SYNCED = (True, "offset 10, master's 0.1s earlier 10")


def pod(node_id: str, **update: Any) -> Pod:
    """A group pod (or T), Running and Ready on its old node unless `update` says otherwise."""
    name = NAMES[node_id]
    fields: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "ip": IPS[node_id],
        "port": REDIS_PORT,
        "node": f"old-{name}" if node_id != T else "new-t",
        "running": True,
        "terminating": False,
        "state": "Running",
    }
    fields.update(update)
    return Pod(**fields)


def survey(
    entries: dict[str, NodeEntry] | None = None,
    *,
    with_temp: bool = False,
    pods: Mapping[str, Pod | None] | None = None,
    override: dict[tuple[str, str], NodeEntry | None] | None = None,
    states: dict[str, str] | None = None,
    synced: tuple[bool, str] = SYNCED,
    tainted: frozenset[str] = frozenset(),
    zone: str | None = "zone-a",
    leftovers: list[Pod] | None = None,
) -> Survey:
    """Every node answers as `entries` (a healthy cluster by default) say: its view, its id, its
    ROLE, cluster_state ok (unless `states`), and every replica is `synced`."""
    es = entries or healthy_entries()
    with_temp = with_temp or (pods or {}).get(TEMP) is not None
    members: dict[str, Pod | None] = {NAMES[n]: pod(n) for n in MEMBERS}
    temp = pod(T) if with_temp else None
    for name, p in (pods or {}).items():
        if name == TEMP:
            temp = p
        else:
            members[name] = p
    answers: dict[tuple[str, ...], Any] = {}
    vs = views(es, seen_by=[n for n in es if n in MEMBERS or with_temp], override=override)
    for name, lines in vs.items():
        me = myself(lines)
        answers[("nodes", name)] = lines
        if me is not None:
            answers[("myid", name)] = me.id
            answers[("role", name)] = "master" if me.is_master else "slave"
        answers[("state", name)] = (states or {}).get(name, "ok")
    for replica in vs:
        for master in vs:
            answers[("sync", replica, master)] = synced
    for p in [*members.values(), temp]:
        if p is not None and p.node is not None:
            answers[("tainted", p.node)] = p.node in tainted
            answers[("zone", p.node)] = zone
    return Survey(members, temp=temp, leftovers=leftovers or [], answers=answers)


def state(phase: str, **update: Any) -> ClusterMoveState:
    """The state of A's move as the phases before `phase` left it."""
    base: dict[str, Any] = {"uid": "uid-cache-0", "node": "old-cache-0", "ip": IPS[A]}
    if phase != "start":
        base |= {
            "kind": "master",
            "node_id": A,
            "slots": [list(r) for r in SLOTS_A],
            "zone": "zone-a",
            "temp": TEMP,
            "started": (NOW - timedelta(seconds=30)).isoformat(),
        }
    if phase not in ("start", "temp_start"):
        base |= {"temp_id": T, "temp_ip": IPS[T], "temp_node": "new-t"}
    if phase in ("failover_to_temp", "failover_to_a"):
        base |= {"failover_at": WALL - 1, "failover_tries": 1}
    if phase in ("failover_to_a", "temp_remove"):
        base |= {"new_ip": "10.2.0.10", "new_node": "new-a"}
    return ClusterMoveState.model_validate(base | update)


def a_round(phase: str, sv: Survey, *, wall: float = WALL, pod_name: str = "cache-0", **update: Any) -> Round:
    st = state(phase, **update)
    move = RedisMove(
        namespace="ns",
        group="cache",
        kind="cluster",
        pod=pod_name,
        role="master",
        statefulset="cache",
        phase=phase,
        phase_deadline=NOW + timedelta(minutes=5),
        data=st.dump(),
    )
    return Round(move, st, sv, NOW, wall, RUN)


def back_on_new_node(ip: str = "10.2.0.10") -> Pod:
    """A's pod after its eviction: a new uid, a new IP, on a new node."""
    return pod(A, uid="uid-cache-0-new", ip=ip, node="new-a")
