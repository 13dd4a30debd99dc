"""Redis Cluster: the pure decisions of the phases, over every node's CLUSTER NODES view (`Views`)
and the move's state. Each answers "go" (None, or what to do) or why not yet; the phases in
procedure.py read the group, ask these, and act."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ....redis.cluster import NodeEntry
from .survey import FAILOVER_ATTEMPTS, FAILOVER_RETRY_S, Addr, Views, entry_of, myself, norm, roles_agree

StartPath = Literal["restart", "temp_start"]
Retry = Literal["wait", "again", "give-up"]


def start_path(me: NodeEntry) -> tuple[StartPath, str]:
    """start: a master of slots moves through a temporary node; anything else (a replica, a
    master without slots) is evicted and awaited. (next phase, the node's kind)"""
    if me.is_master and me.slots:
        return "temp_start", "master"
    return "restart", "replica" if me.is_replica else "empty-master"


def peers_to_meet(a_addr: Addr, running: Iterable[Addr]) -> list[Addr]:
    """temp_start: whom the temporary node MEETs: A first, then every other running group pod
    (one MEET would do, but gossip then takes seconds to reach every node)."""
    return [a_addr, *sorted({ad for ad in running if ad != a_addr})]


def unaware_of(views: Views, temp_id: str) -> str | None:
    """temp_join: why not every node knows the temporary node yet (a handshake is not knowing)."""
    unaware = [n for n, es in views.items() if (e := entry_of(es, temp_id)) is None or e.unsettled]
    if not unaware:
        return None
    return f"{len(unaware)} of {len(views)} nodes do not know the temporary node yet ({', '.join(sorted(unaware))})"


def took_over(views: Views, name: str, slots: list[tuple[int, int]]) -> bool:
    """Does `name` see itself as master of exactly `slots` (a failover an earlier attempt sent)?"""
    me = myself(views.get(name, []))
    return me is not None and me.is_master and norm(me.slots) == slots


def not_listed(views: Views, temp_id: str, node_id: str) -> list[str]:
    """temp_sync: the masters (of slots) that do not list the temporary node as A's replica yet."""
    masters = [n for n, es in views.items() if (me := myself(es)) is not None and me.is_master and me.slots]
    return [
        n
        for n in masters
        if (e := entry_of(views[n], temp_id)) is None
        or not e.is_replica
        or e.master_id != node_id
        or e.unsettled
    ]


def retry(now: float, failover_at: float, tries: int) -> Retry:
    """A failover whose roles do not agree yet: wait for it, send it again once CLUSTER FAILOVER
    has surely given up (FAILOVER_RETRY_S), or give up after FAILOVER_ATTEMPTS."""
    if now - failover_at < FAILOVER_RETRY_S:
        return "wait"
    return "give-up" if tries >= FAILOVER_ATTEMPTS else "again"


def failback_pending(
    views: Views, node_id: str, temp_id: str, temp: str, slots: list[tuple[int, int]]
) -> str | None:
    """failover_to_a: why A is not yet master of its slots again with nobody following T (T may
    already be forgotten by some nodes, by an earlier attempt of the phase)."""
    why = roles_agree(views, node_id, temp_id, slots, replica_may_be_gone=True)
    if why is not None:
        return why
    t_me = myself(views.get(temp, []))
    followers = sorted(n for n, es in views.items() for e in es if e.master_id == temp_id)
    if followers:
        return f"nodes still follow the temporary node in {', '.join(followers)}"
    if t_me is None or t_me.master_id != node_id:
        return "the temporary node does not see itself as replica of A yet"
    return None


def not_announced(views: Views, node_id: str, ip: str) -> list[str]:
    """a_restart, restart: the nodes that do not show the restarted node at its new IP yet."""
    return sorted(
        n for n, es in views.items() if (e := entry_of(es, node_id)) is None or e.ip != ip or e.unsettled
    )


def remembering(views: Views, node_id: str) -> list[str]:
    """temp_remove: the nodes that still list the forgotten temporary node."""
    return sorted(n for n, es in views.items() if entry_of(es, node_id) is not None)


def followers_of(views: Views, node_id: str) -> list[str]:
    """cleanup: the nodes that still replicate the temporary node."""
    return sorted(n for n, es in views.items() for e in es if e.master_id == node_id and not e.myself)


def stale_self(me: NodeEntry | None, ip: str) -> str | None:
    """A restarted node whose own view still shows its old IP (redis/redis#4645): that IP."""
    return me.ip if me is not None and me.ip != ip else None
