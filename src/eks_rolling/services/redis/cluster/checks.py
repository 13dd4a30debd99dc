"""Redis Cluster: the pure checks the phase decisions are made of, over every node's CLUSTER NODES
view (`Views`, by pod name): who agrees on which roles, who lags, what makes the group unsafe,
and one check per question a phase asks. Values in, values out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ....redis.cluster import NodeEntry, ranges_text, uncovered_slots
from .survey import FAILOVER_ATTEMPTS, FAILOVER_RETRY_S, Addr, Views, short

StartPath = Literal["restart", "temp_start"]
Retry = Literal["wait", "again", "give-up"]


def norm(ranges: Iterable[Iterable[int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted((int(r[0]), int(r[1])) for r in (list(x) for x in ranges)):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def myself(entries: list[NodeEntry]) -> NodeEntry | None:
    return next((e for e in entries if e.myself), None)


def entry_of(entries: list[NodeEntry], node_id: str) -> NodeEntry | None:
    return next((e for e in entries if e.id == node_id), None)


def roles_agree(
    views: Views, master_id: str, replica_id: str, slots: list[tuple[int, int]], *, replica_may_be_gone: bool
) -> str | None:
    """None if every view has `master_id` as master of exactly `slots` and `replica_id` as its
    replica; else what disagrees."""
    for name, entries in views.items():
        m = entry_of(entries, master_id)
        if m is None or not m.is_master or m.unsettled or norm(m.slots) != slots:
            got = "unknown" if m is None else f"{','.join(sorted(m.flags))} slots {ranges_text(m.slots)}"
            return f"{name} sees {short(master_id)} as {got}"
        r = entry_of(entries, replica_id)
        if r is None and replica_may_be_gone:
            continue
        if r is None or not r.is_replica or r.master_id != master_id:
            got = "unknown" if r is None else ",".join(sorted(r.flags))
            got += f" of {short(r.master_id)}" if r is not None and r.master_id else ""
            return f"{name} sees {short(replica_id)} as {got}"
    return None


def lagging_nodes(views: Views) -> list[str]:
    """Nodes whose own role (master, or replica of whom) some other node does not know yet."""
    out: list[str] = []
    for name, entries in views.items():
        me = myself(entries)
        if me is None:
            continue
        for other, es in views.items():
            e = entry_of(es, me.id) if other != name else None
            if e is not None and (e.is_master != me.is_master or e.master_id != me.master_id):
                out.append(name)
                break
    return sorted(out)


def cluster_problems(views: Views, errors: dict[str, str], known_ids: set[str] | None) -> list[str]:
    """What makes the group unsafe to touch, from every node's own view."""
    out: list[str] = [f"{name} does not answer ({why})" for name, why in sorted(errors.items())]
    for name, entries in sorted(views.items()):
        me = myself(entries)
        missing = uncovered_slots(entries)
        if missing:
            out.append(f"{name}: {missing} of 16384 slots uncovered")
        for e in entries:
            if e.flags & {"fail", "fail?"}:
                out.append(f"{name} flags node {short(e.id)} ({e.ip}) {','.join(sorted(e.flags))}")
            if (
                e.is_master
                and e.slots
                and not any(r.master_id == e.id and not r.unsettled for r in entries if r.is_replica)
            ):
                out.append(f"{name}: master {short(e.id)} ({ranges_text(e.slots)}) has no replica")
            if known_ids is not None and e.id not in known_ids and not e.unsettled:
                out.append(
                    f"{name} knows node {short(e.id)} ({e.ip}), which is no pod of the group (a leftover temporary node?)"
                )
        if me is None:
            out.append(f"{name}: no myself entry")
    return sorted(set(out))


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


def shaking_hands(views: Views, ip: str) -> list[str]:
    """temp_remove: the nodes with a handshake still open to the deleted temporary node's address
    (a role announced to it just before the FORGET): not the node, so no FORGET reaches it; it
    expires after the node timeout."""
    return sorted(n for n, es in views.items() if any("handshake" in e.flags and e.ip == ip for e in es))


def followers_of(views: Views, node_id: str) -> list[str]:
    """cleanup: the nodes that still replicate the temporary node."""
    return sorted(n for n, es in views.items() for e in es if e.master_id == node_id and not e.myself)


def stale_self(me: NodeEntry | None, ip: str) -> str | None:
    """A restarted node whose own view still shows its old IP (redis/redis#4645): that IP."""
    return me.ip if me is not None and me.ip != ip else None


def temp_holds_slots(views: Views, temp: str, temp_id: str) -> bool:
    own = myself(views.get(temp, []))
    if own is not None:
        return own.is_master and bool(own.slots)
    return any(
        (e := entry_of(es, temp_id)) is not None and e.is_master and bool(e.slots) and "fail" not in e.flags
        for es in views.values()
    )
