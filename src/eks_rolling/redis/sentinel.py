"""Redis under Sentinel over redis-py: what the Sentinel procedure reads and sends, and the
zero-loss switchover itself (reference/anchors-redis.md 6.2).

One plain client per address: redis-py's `Sentinel` object fans admin commands out to every
sentinel (its `sentinel_failover()` once promoted two masters). Sentinel subcommands go through
`execute_command("SENTINEL", <sub>, ...)`, so redis-py's callbacks keyed "SENTINEL RESET" etc.
never apply (that one turns the reply 1 into False) and we read the raw replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis

log = logging.getLogger(__name__)

Address = tuple[str, int]
RedisError = redis.RedisError

# The switchover gives up this long before its CLIENT PAUSE would lapse on its own, so the old
# master is always demoted (or released) by us while it still refuses writes.
PAUSE_MARGIN_S = 1.0
# The target must match the paused master's offset within this (measured: 2-3 ms).
CATCHUP_LIMIT_S = 1.0
# After a failed switchover whose SENTINEL FAILOVER may still be running, keep the old master
# paused at most this long waiting for Sentinel's outcome (promotion takes ~1.1 s).
SETTLE_LIMIT_S = 5.0


def _fields(raw: Any) -> dict[str, str]:
    """A RESP3 map or a RESP2 flat field/value list, as strings."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    items = list(raw or [])
    return {str(k): str(v) for k, v in zip(items[::2], items[1::2], strict=True)}


def _address(raw: Any) -> Address | None:
    if not raw:
        return None
    host, port = list(raw)[:2]
    return (str(host), int(port))


# --- data nodes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaLink:
    """A master's view of one replica (an `INFO replication` slaveN line)."""

    ip: str
    port: int
    state: str
    offset: int
    lag: int


@dataclass(frozen=True)
class Replication:
    role: str  # "master" or "slave"
    offset: int  # master_repl_offset on a master, slave_repl_offset on a replica
    master: Address | None = None  # a replica's master
    link_up: bool = False
    syncing: bool = False
    replicas: tuple[ReplicaLink, ...] = ()

    @property
    def is_master(self) -> bool:
        return self.role == "master"

    def link_of(self, ip: str) -> ReplicaLink | None:
        return next((r for r in self.replicas if r.ip == ip), None)


class DataNode:
    """A Redis data node (master or replica), by address."""

    def __init__(self, client: Any, address: Address) -> None:
        self.client = client
        self.address = address

    def __repr__(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def replication(self) -> Replication:
        info: dict[str, Any] = self.client.info("replication")
        role = str(info.get("role"))
        if role == "master":
            links = tuple(
                ReplicaLink(
                    str(v.get("ip")),
                    int(v.get("port", 0)),
                    str(v.get("state")),
                    int(v.get("offset", 0)),
                    int(v.get("lag", 0)),
                )
                for k, v in sorted(info.items())
                if k.startswith("slave") and isinstance(v, dict)
            )
            return Replication(role, int(info.get("master_repl_offset", 0)), replicas=links)
        host = info.get("master_host")
        return Replication(
            role,
            int(info.get("slave_repl_offset", 0)),
            master=(str(host), int(info.get("master_port", 0))) if host else None,
            link_up=info.get("master_link_status") == "up",
            syncing=bool(int(info.get("master_sync_in_progress", 0))),
        )

    def priority(self) -> int:
        reply = _fields(self.client.execute_command("CONFIG", "GET", "replica-priority"))
        return int(reply["replica-priority"])

    def set_priority(self, value: int) -> None:
        self.client.execute_command("CONFIG", "SET", "replica-priority", str(value))

    def pause_writes(self, ms: int) -> None:
        # A pause already in force is only ever extended, never shortened, by another one.
        self.client.execute_command("CLIENT", "PAUSE", str(ms), "WRITE")

    def unpause(self) -> None:
        self.client.execute_command("CLIENT", "UNPAUSE")

    def follow(self, master: Address) -> None:
        self.client.execute_command("REPLICAOF", master[0], str(master[1]))

    def demote_and_unpause(self, master: Address) -> None:
        """REPLICAOF and CLIENT UNPAUSE in one MULTI (redis/redis#8170): the writes held by the
        pause are answered READONLY, never applied to a node that is no longer the master."""
        pipe = self.client.pipeline(transaction=True)
        pipe.execute_command("REPLICAOF", master[0], str(master[1]))
        pipe.execute_command("CLIENT", "UNPAUSE")
        pipe.execute()


def lag_bytes(master: Replication, replica: Replication) -> int:
    return max(master.offset - replica.offset, 0)


# --- sentinels ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SentinelReplica:
    ip: str
    port: int
    flags: frozenset[str]
    priority: int
    link_ok: bool
    info_refresh_ms: int = 0  # since this sentinel's last INFO of the replica

    @property
    def healthy(self) -> bool:
        return self.flags == {"slave"} and self.link_ok


@dataclass(frozen=True)
class SentinelView:
    """One sentinel's view of one master name."""

    address: Address
    master: Address | None
    master_flags: frozenset[str]
    num_other_sentinels: int
    info_refresh_ms: int
    replicas: tuple[SentinelReplica, ...]
    peers: tuple[Address, ...]
    quorum: str  # the CKQUORUM reply, "OK ..." or the NOQUORUM error text

    @property
    def quorum_ok(self) -> bool:
        return self.quorum.startswith("OK")

    @property
    def failover_in_progress(self) -> bool:
        return any(f.startswith("failover") for f in self.master_flags)

    def replica(self, ip: str) -> SentinelReplica | None:
        return next((r for r in self.replicas if r.ip == ip), None)


class SentinelNode:
    def __init__(self, client: Any, address: Address, master_set: str) -> None:
        self.client = client
        self.address = address
        self.master_set = master_set

    def __repr__(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def master_addr(self) -> Address | None:
        return _address(self.client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_set))

    def view(self) -> SentinelView:
        """Everything in one round trip (a pipeline without MULTI: sentinels have no MULTI)."""
        name = self.master_set
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        pipe.execute_command("SENTINEL", "MASTER", name)
        pipe.execute_command("SENTINEL", "REPLICAS", name)
        pipe.execute_command("SENTINEL", "SENTINELS", name)
        pipe.execute_command("SENTINEL", "CKQUORUM", name)
        addr, master, replicas, peers, quorum = pipe.execute(raise_on_error=False)
        for reply in (addr, master, replicas, peers):
            if isinstance(reply, Exception):
                raise reply
        state = _fields(master)
        entries = [_fields(r) for r in replicas]
        return SentinelView(
            address=self.address,
            master=_address(addr),
            master_flags=frozenset(state.get("flags", "").split(",")),
            num_other_sentinels=int(state.get("num-other-sentinels", 0)),
            info_refresh_ms=int(state.get("info-refresh", 0)),
            replicas=tuple(
                SentinelReplica(
                    e["ip"],
                    int(e["port"]),
                    frozenset(e.get("flags", "").split(",")),
                    int(e.get("slave-priority", 100)),
                    e.get("master-link-status") == "ok",
                    int(e.get("info-refresh", 0)),
                )
                for e in entries
            ),
            peers=tuple((p["ip"], int(p["port"])) for p in map(_fields, peers)),
            quorum=str(quorum),
        )

    def failover(self) -> None:
        """SENTINEL FAILOVER on this one sentinel only."""
        self.client.execute_command("SENTINEL", "FAILOVER", self.master_set)

    def reset(self) -> int:
        """SENTINEL RESET <name>: the number of masters reset (1)."""
        return int(self.client.execute_command("SENTINEL", "RESET", self.master_set))


# --- the switchover -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchoverReport:
    paused_at: float  # wall clock (epoch seconds), to line up with what clients saw
    catchup_ms: float
    promoted_ms: float  # pause -> the target reports role master
    unpaused_ms: float  # pause -> the old master demoted and released: writes were held this long
    agreed: bool  # every sentinel named the target before the release


class SwitchoverFailed(Exception):
    """The switchover did not happen as planned; the old master was released (and demoted if a
    new master had been promoted after all: `promoted`)."""

    def __init__(self, why: str, promoted: Address | None = None) -> None:
        super().__init__(why)
        self.promoted = promoted


def switchover(
    old: DataNode,
    new: DataNode,
    sentinels: Sequence[SentinelNode],
    *,
    pause_ms: int,
    poll_s: float = 0.005,
    clock: Callable[[], float] = time.monotonic,
) -> SwitchoverReport:
    """Move the master role from `old` to `new` without losing an acknowledged write:
    CLIENT PAUSE WRITE on `old`, wait for `new` to match its offset, SENTINEL FAILOVER through
    ONE sentinel (`sentinels[0]`; `new` must already be the replica Sentinel will pick), wait
    until `new` is master and every sentinel names it, then REPLICAOF + UNPAUSE on `old` in one
    MULTI. Every path releases `old`: on failure it is demoted if a promotion happened after all,
    else simply unpaused. Sub-second polls only; the whole call is bounded by `pause_ms`."""
    paused_at, t0 = time.time(), clock()
    act_by = t0 + max(pause_ms / 1000 - PAUSE_MARGIN_S, 0.25)
    released = failover_sent = False
    try:
        old.pause_writes(pause_ms)
        target = old.replication().offset  # frozen now: the pause holds every write
        catchup_by = min(t0 + CATCHUP_LIMIT_S, act_by)
        while new.replication().offset < target:
            if clock() > catchup_by:
                raise SwitchoverFailed(f"{new} did not reach the master's offset {target} in time")
            time.sleep(poll_s)
        catchup = clock()
        failover_sent = True  # set first: a lost reply may still have started it
        sentinels[0].failover()
        promoted_at: float | None = None
        agreed = False
        while True:
            if promoted_at is None and _answers(lambda: new.replication().is_master):
                promoted_at = clock()
            if promoted_at is not None:
                agreed = all(_answers(partial(_names, s, new.address)) for s in sentinels)
                if agreed:
                    break
            if clock() > act_by:
                if promoted_at is None:
                    raise SwitchoverFailed(f"{new} was not promoted within {act_by - t0:.1f}s")
                break  # promoted but a sentinel lags: release now, the caller confirms later
            time.sleep(poll_s)
        assert promoted_at is not None
        old.demote_and_unpause(new.address)
        released = True
        return SwitchoverReport(
            paused_at=paused_at,
            catchup_ms=round((catchup - t0) * 1000, 1),
            promoted_ms=round((promoted_at - t0) * 1000, 1),
            unpaused_ms=round((clock() - t0) * 1000, 1),
            agreed=agreed,
        )
    except Exception as exc:
        promoted = _release(old, new, sentinels, failover_sent=failover_sent, poll_s=poll_s, clock=clock)
        released = True
        why = str(exc) if isinstance(exc, SwitchoverFailed) else f"{type(exc).__name__}: {exc}"
        raise SwitchoverFailed(why, promoted) from exc
    finally:
        if not released:  # not an Exception (the process is going down): still release
            _release(old, new, sentinels, failover_sent=failover_sent, poll_s=poll_s, clock=clock)


def _names(sentinel: SentinelNode, address: Address) -> bool:
    return sentinel.master_addr() == address


def _failing_over(sentinel: SentinelNode) -> bool:
    return sentinel.view().failover_in_progress


def _answers(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (RedisError, OSError):
        return False


def _promoted(old: DataNode, new: DataNode, sentinels: Sequence[SentinelNode]) -> Address | None:
    """The address that took over from `old`, if any did."""
    if _answers(lambda: new.replication().is_master):
        return new.address
    for s in sentinels:
        try:
            addr = s.master_addr()
        except (RedisError, OSError):
            continue
        if addr is not None and addr != old.address:
            return addr
    return None


def _release(
    old: DataNode,
    new: DataNode,
    sentinels: Sequence[SentinelNode],
    *,
    failover_sent: bool,
    poll_s: float,
    clock: Callable[[], float],
) -> Address | None:
    """Unpause `old` after a failed switchover, demoting it first if a new master took over
    (returned). Best effort: if this fails too, the pause lapses on its own."""
    promoted: Address | None = None
    try:
        promoted = _promoted(old, new, sentinels)
        if failover_sent and promoted is None:
            # A SENTINEL FAILOVER may still promote someone: releasing `old` now could let it
            # take writes that the promotion would then discard. Keep it paused (extending the
            # pause) until Sentinel settles, bounded.
            until = clock() + SETTLE_LIMIT_S
            while promoted is None and clock() < until:
                old.pause_writes(1000)
                settled = not any(_answers(partial(_failing_over, s)) for s in sentinels)
                promoted = _promoted(old, new, sentinels)
                if settled:
                    break
                time.sleep(poll_s * 10)
        if promoted is not None:
            log.warning("switchover failed after a promotion: demoting %s to follow %s", old, promoted)
            old.demote_and_unpause(promoted)
        else:
            old.unpause()
    except (RedisError, OSError) as exc:
        log.error("could not release %s after a failed switchover (%s); the pause lapses by itself", old, exc)
    return promoted
