"""Redis Cluster after a failed move or roll: the temporary node leaves the cluster without
uncovering a slot (the consistency argument is in the package docstring)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ....models import RedisMove
from ....redis.cluster import RedisError
from ..procedure import RedisEnv
from .act import announce, forget_everywhere
from .checks import cluster_problems, followers_of, lagging_nodes, myself, temp_holds_slots
from .survey import (
    FAILOVER_RETRY_S,
    FOR_ID_ANNOTATION,
    FOR_POD_ANNOTATION,
    GROUP_LABEL,
    RUN_LABEL,
    SLOTS_ANNOTATION,
    TEMP_FOR_LABEL,
    Addr,
    addr_of,
    admin,
    label_safe,
    look,
    members_of,
    pod_port,
    short,
    sync_gap,
)

log = logging.getLogger(__name__)


# --- failure ---------------------------------------------------------------------------------
def abort(move: RedisMove, env: RedisEnv) -> list[str]:
    temp = move.data.get("temp")
    if not temp:
        return []
    try:
        tp = env.kube.get_pod(env.group.namespace, temp)
        if tp is None:
            return [f"temporary pod {temp} does not exist"]
        return remove_temp(env, tp) + fix_self_views(env)
    except Exception as exc:  # the named error must still surface; Rollback cleans up again
        log.exception("aborting the move of %s", move.ref)
        return [f"cleanup of {temp} failed ({type(exc).__name__}: {exc}); Rollback retries it"]


def cleanup_temps(env: RedisEnv) -> list[str]:
    """This run's temporary pods (found by label: Rollback does not see the moves) leave the
    cluster without uncovering a slot; see the module docstring for the argument."""
    selector = (
        f"{TEMP_FOR_LABEL},{RUN_LABEL}={env.ctx.taint_value},{GROUP_LABEL}={label_safe(env.group.name)}"
    )
    notes: list[str] = []
    temps = env.kube.list_pods(env.group.namespace, selector)
    for tp in temps:
        notes += remove_temp(env, tp)
    if temps:
        notes += fix_self_views(env)
    return notes


def fix_self_views(env: RedisEnv, wait_s: float = 3.0) -> list[str]:
    """A pod restarted by an interrupted move may still announce its old IP to itself (and to
    clients asking it for CLUSTER SLOTS): a MEET from a peer fixes that (once the peer's cron
    has connected: up to ~100 ms), checked here until `wait_s`."""
    members = members_of(env)
    addrs = {n: ad for n, p in members.items() if (ad := addr_of(p))}
    notes: list[str] = []
    met: set[str] = set()
    deadline = env.monotonic() + wait_s
    while True:
        stale = []
        for name, addr in addrs.items():
            peer = next((a for n, a in addrs.items() if n != name), None)
            try:
                with admin(env, addr) as n:
                    me = myself(n.nodes())
                if peer is None or me is None or me.ip == addr[0]:
                    continue
                stale.append(name)
                if name not in met:
                    with admin(env, peer) as p:
                        p.meet(*addr)
                    met.add(name)
                    notes.append(
                        f"{name}'s own view had its old IP {me.ip}: CLUSTER MEET {addr[0]} from a peer"
                    )
            except (RedisError, OSError) as exc:
                stale.append(f"{name} ({type(exc).__name__})")
        if not stale:
            return notes
        if env.monotonic() > deadline:
            return [*notes, f"WARNING: own view of {', '.join(stale)} still not fixed"]
        env.sleep(0.1)


def remove_temp(env: RedisEnv, tp: Any, *, wait_s: float | None = None) -> list[str]:
    ns, name = env.group.namespace, tp.metadata.name
    wait_s = env.settings.redis_cleanup_wait_s if wait_s is None else wait_s
    ann = tp.metadata.annotations or {}
    a_name, a_id = ann.get(FOR_POD_ANNOTATION, ""), ann.get(FOR_ID_ANNOTATION, "")
    t_addr = addr_of(tp) or ((str(tp.status.pod_ip), pod_port(tp)) if tp.status.pod_ip else None)
    members = members_of(env)
    addrs = {n: ad for n, p in members.items() if (ad := addr_of(p))}
    temp_id = temp_id_of(env, t_addr, addrs)
    if temp_id is None:
        env.kube.delete_pod(ns, name)
        return [f"temporary pod {name} never joined the cluster: deleted it"]
    notes: list[str] = []
    deadline = env.monotonic() + wait_s
    issued = 0.0
    announced: set[str] = set()
    why: str | None = None
    while True:
        # Re-read the pods each time: A may come back while we wait.
        addrs = {n: ad for n, p in members_of(env).items() if (ad := addr_of(p))}
        everyone = {**addrs, **({name: t_addr} if t_addr else {})}
        views, _ = look(env, everyone)
        for lagging in set(lagging_nodes(views)) - announced:
            with contextlib.suppress(RedisError, OSError):
                announce(env, everyone, lagging)
            announced.add(lagging)
        holding = temp_holds_slots(views, name, temp_id)
        if not holding:
            followers = followers_of(views, temp_id)
            if not followers:
                break
            why = f"{', '.join(followers)} still follow it"
        else:
            a_pod = env.kube.get_pod(ns, a_name) if a_name else None
            a_addr = addr_of(a_pod)
            why = failback_blocker(env, a_addr, a_id, temp_id, t_addr)
            if why is None and env.monotonic() - issued > FAILOVER_RETRY_S and a_addr is not None:
                with admin(env, a_addr) as a:
                    a.failover()
                issued = env.monotonic()
                notes.append(
                    f"{name} ({short(temp_id)}) was master: CLUSTER FAILOVER on {a_name} to take its slots back"
                )
        if env.monotonic() > deadline:
            if holding:
                return [
                    *notes,
                    f"KEPT temporary pod {ns}/{name} ({short(temp_id)}): it is master of "
                    f"{ann.get(SLOTS_ANNOTATION, '?')} and {a_name} cannot take them back ({why}); removing it would "
                    f"uncover those slots. When {a_name} is a synced replica of it: CLUSTER FAILOVER on {a_name}, "
                    f"then CLUSTER FORGET {temp_id} on every node and delete the pod",
                ]
            return [*notes, f"KEPT temporary pod {ns}/{name}: {why}"]
        env.sleep(0.2)
    members = members_of(env)
    addrs = {n: ad for n, p in members.items() if (ad := addr_of(p))}
    missing = sorted(set(members) - set(addrs))
    forgot, ms = forget_everywhere(env, addrs, temp_id)
    env.kube.delete_pod(ns, name)
    notes.append(
        f"CLUSTER FORGET {short(temp_id)} on {len(forgot)} nodes in {ms:.1f} ms; deleted temporary pod {name}"
    )
    if missing:
        notes.append(
            f"WARNING: {', '.join(missing)} did not run: they may gossip {short(temp_id)} back after 60 s; "
            f"run CLUSTER FORGET {temp_id} on them"
        )
    return notes + settle(env, addrs)


def settle(env: RedisEnv, addrs: dict[str, Addr], wait_s: float = 5.0) -> list[str]:
    """After a FORGET a node may list a replica of the forgotten node without a master until
    that replica's next ping: announce lagging roles and wait (bounded) for a clean view."""
    deadline = env.monotonic() + wait_s
    announced: set[str] = set()
    while True:
        views, errors = look(env, addrs)
        problems = cluster_problems(views, errors, None)
        if not problems:
            return []
        if env.monotonic() > deadline:
            return [f"WARNING: after the cleanup: {'; '.join(problems)}"]
        for lagging in set(lagging_nodes(views)) - announced:
            with contextlib.suppress(RedisError, OSError):
                announce(env, addrs, lagging)
            announced.add(lagging)
        env.sleep(0.2)


def temp_id_of(env: RedisEnv, t_addr: Addr | None, addrs: dict[str, Addr]) -> str | None:
    if t_addr is None:
        return None
    try:
        with admin(env, t_addr) as t:
            if len(t.nodes()) > 1:
                return t.myid()
    except (RedisError, OSError):
        pass
    # Not answering: the cluster may still know it by its address.
    views, _ = look(env, addrs)
    return next((e.id for es in views.values() for e in es if (e.ip, e.port) == t_addr), None)


def failback_blocker(
    env: RedisEnv, a_addr: Addr | None, a_id: str, temp_id: str, t_addr: Addr | None
) -> str | None:
    """None if A can take its slots back from T now (a synced replica of T); else why not."""
    if a_addr is None:
        return "it is not running"
    if t_addr is None:
        return "the temporary node does not answer"
    try:
        with admin(env, a_addr) as a:
            if a.myid() != a_id:
                return "it has another node id"
            if a.role() == "master":
                return "it is master already; waiting for every node to agree"
            me = myself(a.nodes())
        if me is None or me.master_id != temp_id:
            return "it does not replicate the temporary node"
        synced, detail = sync_gap(env, a_addr, t_addr)
    except (RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if synced else f"not synced: {detail}"
