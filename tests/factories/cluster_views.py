"""Builders for the Redis Cluster procedure's pure decisions: CLUSTER NODES views made of values
(no network, no process). The shard under move: master A (slots 0-5460) with replica B; two other
shards (C, D and E, F); the temporary node T."""

from __future__ import annotations

from dataclasses import replace

from eks_rolling.labels import REDIS_PORT
from eks_rolling.redis.cluster import NodeEntry

A, B, C, D, E, F, T = (*(c * 40 for c in "abcdef"), "7" * 40)
NAMES = {
    A: "cache-0",
    B: "cache-1",
    C: "cache-2",
    D: "cache-3",
    E: "cache-4",
    F: "cache-5",
    T: "cache-0-eksr-tmp",
}
IPS = {
    A: "10.1.0.10",
    B: "10.1.0.11",
    C: "10.1.0.12",
    D: "10.1.0.13",
    E: "10.1.0.14",
    F: "10.1.0.15",
    T: "10.1.0.20",
}
SLOTS_A = [(0, 5460)]
SLOTS = {A: ((0, 5460),), C: ((5461, 10922),), E: ((10923, 16383),)}
MASTER_OF = {B: A, D: C, F: E}


def entry(
    node_id: str,
    *flags: str,
    master: str | None = None,
    slots: tuple[tuple[int, int], ...] = (),
    ip: str | None = None,
) -> NodeEntry:
    return NodeEntry(node_id, ip or IPS[node_id], REDIS_PORT, frozenset(flags), master, "connected", slots)


def healthy_entries() -> dict[str, NodeEntry]:
    out = {n: entry(n, "master", slots=s) for n, s in SLOTS.items()}
    out |= {r: entry(r, "slave", master=m) for r, m in MASTER_OF.items()}
    return out


def views(
    entries: dict[str, NodeEntry] | None = None,
    *,
    seen_by: list[str] | None = None,
    override: dict[tuple[str, str], NodeEntry | None] | None = None,
) -> dict[str, list[NodeEntry]]:
    """Every node's view (by pod name) of `entries` (a healthy cluster by default), its own line
    flagged myself; `override[(viewer, node)]` replaces (or with None drops) one line of one view."""
    es = entries or healthy_entries()
    out: dict[str, list[NodeEntry]] = {}
    for viewer in seen_by or list(es):
        lines = []
        for node_id, e in es.items():
            got = (override or {}).get((viewer, node_id), e)
            if got is None:
                continue
            lines.append(replace(got, flags=got.flags | {"myself"}) if node_id == viewer else got)
        out[NAMES[viewer]] = lines
    return out


def with_temp_as_replica_of_a() -> dict[str, NodeEntry]:
    return {**healthy_entries(), T: entry(T, "slave", master=A)}


def after_failover_to_temp() -> dict[str, NodeEntry]:
    """T master of A's slots, A its replica; B follows T (replica migration of the shard)."""
    es = healthy_entries()
    es[A] = entry(A, "slave", master=T)
    es[B] = entry(B, "slave", master=T)
    es[T] = entry(T, "master", slots=SLOTS[A])
    return es


def after_failback() -> dict[str, NodeEntry]:
    return {**healthy_entries(), T: entry(T, "slave", master=A)}
