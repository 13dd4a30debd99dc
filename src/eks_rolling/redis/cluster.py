"""Redis Cluster admin over redis-py: one plain client per node (the cluster client's node cache
does not know a temporary node until it refreshes), raw `execute_command` for what redis-py lacks
(`CLUSTER FORGET` has no method; `CLUSTER NODES` is parsed here so every caller sees one shape).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

SLOTS = 16384
# Flags that mean a peer's entry cannot be trusted yet (or any more).
UNSETTLED = frozenset({"fail", "fail?", "handshake", "noaddr"})

RedisError = redis.RedisError


@dataclass(frozen=True)
class NodeEntry:
    """One line of `CLUSTER NODES` as seen by one node."""

    id: str
    ip: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    link: str
    slots: tuple[tuple[int, int], ...]

    @property
    def myself(self) -> bool:
        return "myself" in self.flags

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        return "slave" in self.flags

    @property
    def unsettled(self) -> bool:
        return bool(self.flags & UNSETTLED)

    @property
    def slot_count(self) -> int:
        return sum(b - a + 1 for a, b in self.slots)


def parse_nodes(text: str) -> list[NodeEntry]:
    """`CLUSTER NODES` text -> entries (migrating/importing markers are ignored)."""
    out: list[NodeEntry] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        hostport = parts[1].split(",", 1)[0].partition("@")[0]
        host, _, port = hostport.rpartition(":")
        slots: list[tuple[int, int]] = []
        for token in parts[8:]:
            if token.startswith("["):
                continue
            first, _, last = token.partition("-")
            slots.append((int(first), int(last or first)))
        out.append(
            NodeEntry(
                id=parts[0],
                ip=host,
                port=int(port or 0),
                flags=frozenset(parts[2].split(",")),
                master_id=None if parts[3] == "-" else parts[3],
                link=parts[7],
                slots=tuple(slots),
            )
        )
    return out


def uncovered_slots(entries: Iterable[NodeEntry]) -> int:
    """Slots no healthy master serves in this view (what `cluster_state:fail` is made of)."""
    covered = bytearray(SLOTS)
    for e in entries:
        if e.is_master and not e.flags & {"fail", "fail?", "noaddr"}:
            for a, b in e.slots:
                covered[a : b + 1] = b"\x01" * (b - a + 1)
    return SLOTS - sum(covered)


def ranges_text(ranges: Iterable[Iterable[int]]) -> str:
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges) or "none"


class NodeAdmin:
    """Admin commands to one cluster node. Use as a context manager (closes the connection)."""

    def __init__(self, client: redis.Redis, address: str) -> None:
        self.r: Any = client  # redis-py's execute_command is untyped
        self.address = address

    def __enter__(self) -> NodeAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.r.close()

    def _cmd(self, *args: Any) -> Any:
        return self.r.execute_command(*args)

    def myid(self) -> str:
        return str(self._cmd("CLUSTER", "MYID"))

    def nodes(self) -> list[NodeEntry]:
        # The two-word form gets no response callback: the raw text, parsed here.
        return parse_nodes(str(self._cmd("CLUSTER", "NODES")))

    def info(self) -> dict[str, str]:
        raw = str(self._cmd("CLUSTER", "INFO"))
        pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
        return {k: v.strip() for k, v in pairs}

    def replication(self) -> dict[str, Any]:
        out: dict[str, Any] = self.r.info("replication")
        return out

    def role(self) -> str:
        reply = self._cmd("ROLE")
        return str(reply[0])

    def meet(self, ip: str, port: int) -> None:
        self._cmd("CLUSTER", "MEET", ip, port)

    def replicate(self, master_id: str) -> None:
        self._cmd("CLUSTER", "REPLICATE", master_id)

    def failover(self) -> None:
        """Default (safe) manual failover: the master pauses its clients until this replica has
        its exact offset. Asynchronous: `OK` only means it started."""
        self._cmd("CLUSTER", "FAILOVER")

    def forget(self, node_id: str) -> bool:
        """True if forgotten now, False if this node did not know it (a repeat is harmless)."""
        try:
            self._cmd("CLUSTER", "FORGET", node_id)
        except redis.ResponseError as exc:
            if "unknown node" in str(exc).lower():
                return False
            raise
        return True

    def config_set(self, name: str, value: str) -> bool:
        """False when the server does not know the option (older Redis)."""
        try:
            self._cmd("CONFIG", "SET", name, value)
        except redis.ResponseError:
            return False
        return True


__all__ = [
    "SLOTS",
    "NodeAdmin",
    "NodeEntry",
    "RedisError",
    "parse_nodes",
    "ranges_text",
    "uncovered_slots",
]
