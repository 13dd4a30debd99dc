"""Redis Cluster after a failed move or roll: the temporary node leaves the cluster without
uncovering a slot (the consistency argument is in the package docstring). The same pattern as a
move's round, looped within one invocation and bounded: survey, a pure decision, the executor."""

from __future__ import annotations

import logging
from dataclasses import replace

from ....models import RedisMove
from ..procedure import Act, RedisEnv, Wait
from .act import Executor
from .checks import cluster_problems, followers_of, lagging_nodes, myself, temp_holds_slots
from .model import Action, Announce, DeleteTemp, Failover, Forget, Meet
from .survey import (
    FAILOVER_RETRY_S,
    FOR_ID_ANNOTATION,
    FOR_POD_ANNOTATION,
    GROUP_LABEL,
    READ_ERRORS,
    RUN_LABEL,
    SLOTS_ANNOTATION,
    TEMP_FOR_LABEL,
    Survey,
    label_safe,
    short,
    survey,
)

log = logging.getLogger(__name__)

REMOVE_POLL_S = 0.2
SETTLE_WAIT_S = 5.0  # after a FORGET: a replica of the forgotten node pings within a second or two
SELF_VIEW_WAIT_S = 3.0  # a peer's cron connects to a MEET's target within ~100 ms
SELF_VIEW_POLL_S = 0.1

Removal = Wait[None, Action] | Act[None, Action]


# --- the decisions (pure: a Survey in) ----------------------------------------------------------
def temp_id_of(sv: Survey, temp: str) -> str | None:
    """The temporary node's id: its own, once it has met a peer; if it does not answer, as the
    others know its address; None if it never joined."""
    tp = sv.pod(temp)
    if tp is None or tp.addr is None:
        return None
    try:
        if len(sv.nodes(temp)) > 1:
            return sv.myid(temp)
    except READ_ERRORS:
        pass
    views, _ = sv.look(sv.addrs())
    return next((e.id for es in views.values() for e in es if (e.ip, e.port) == tp.addr), None)


def failback_blocker(sv: Survey, a: str, a_id: str, temp_id: str, temp: str) -> str | None:
    """None if A can take its slots back from T now (a synced replica of T); else why not."""
    if a not in sv.addrs():
        return "it is not running"
    if temp not in sv.addrs(with_temp=True):
        return "the temporary node does not answer"
    try:
        if sv.myid(a) != a_id:
            return "it has another node id"
        if sv.role(a) == "master":
            return "it is master already; waiting for every node to agree"
        me = myself(sv.nodes(a))
        if me is None or me.master_id != temp_id:
            return "it does not replicate the temporary node"
        synced, detail = sv.sync(a, temp)
    except READ_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if synced else f"not synced: {detail}"


def removal(
    sv: Survey, temp: str, temp_id: str, announced: set[str], failover_due: bool
) -> tuple[Removal, bool]:
    """One look at T's way out: (Act once it holds no slots and nobody follows it, else Wait
    with why; does it still hold slots?). While it does, A takes them back by a default
    CLUSTER FAILOVER, re-sent only once the last one surely gave up (`failover_due`)."""
    everyone = sv.addrs(with_temp=True)
    views, _ = sv.look(everyone)
    announce = tuple(
        Announce(n, tuple(everyone), quiet=True) for n in lagging_nodes(views) if n not in announced
    )
    if not temp_holds_slots(views, temp, temp_id):
        if followers := followers_of(views, temp_id):
            return Wait(f"{', '.join(followers)} still follow it", 0, actions=announce), False
        return Act("forget", announce), False
    tp = sv.pod(temp)
    a = (tp.annotations if tp else {}).get(FOR_POD_ANNOTATION, "")
    a_id = (tp.annotations if tp else {}).get(FOR_ID_ANNOTATION, "")
    why = failback_blocker(sv, a, a_id, temp_id, temp)
    if why is None and failover_due:
        note = f"{temp} ({short(temp_id)}) was master: CLUSTER FAILOVER on {a} to take its slots back"
        return Wait("failing back", 0, actions=(*announce, Failover(a)), notes=(note,)), True
    return Wait(why or "failing back", 0, actions=announce), True


def stale_selves(sv: Survey) -> tuple[list[str], dict[str, Meet], dict[str, str]]:
    """Pods whose own view still shows an old IP (redis/redis#4645): (names, the MEET from a peer
    that fixes each, the old IP of each)."""
    addrs = sv.addrs()
    stale: list[str] = []
    meets: dict[str, Meet] = {}
    old: dict[str, str] = {}
    for name, (ip, port) in addrs.items():
        peer = next((n for n in addrs if n != name), None)
        try:
            me = myself(sv.nodes(name))
        except READ_ERRORS as exc:
            stale.append(f"{name} ({type(exc).__name__})")
            continue
        if peer is None or me is None or me.ip == ip:
            continue
        stale.append(name)
        meets[name], old[name] = Meet(peer, ip, port), me.ip
    return stale, meets, old


# --- the loops (bounded, within one invocation) ---------------------------------------------------
def cleanup_survey(env: RedisEnv, temp: str | None) -> Survey:
    sv = survey(env, temp, leftovers=False)
    if sv.temp is not None and sv.temp.ip:
        # Asked whenever it has an IP: a temporary node not Ready may still answer and hold slots.
        sv.temp = replace(sv.temp, running=True, terminating=False)
    return sv


def abort(move: RedisMove, env: RedisEnv) -> list[str]:
    temp = move.data.get("temp")
    if not temp:
        return []
    try:
        if cleanup_survey(env, str(temp)).temp is None:
            return [f"temporary pod {temp} does not exist"]
        return remove_temp(env, str(temp)) + fix_self_views(env)
    except Exception as exc:  # the named error must still surface; Rollback cleans up again
        log.exception("aborting the move of %s", move.ref)
        return [f"cleanup of {temp} failed ({type(exc).__name__}: {exc}); Rollback retries it"]


def cleanup_temps(env: RedisEnv) -> list[str]:
    """This run's temporary pods (found by label: Rollback does not see the moves) leave the
    cluster without uncovering a slot; see the package docstring for the argument."""
    selector = (
        f"{TEMP_FOR_LABEL},{RUN_LABEL}={env.ctx.taint_value},{GROUP_LABEL}={label_safe(env.group.name)}"
    )
    notes: list[str] = []
    temps = env.kube.list_pods(env.group.namespace, selector)
    for tp in temps:
        notes += remove_temp(env, tp.metadata.name)
    if temps:
        notes += fix_self_views(env)
    return notes


def fix_self_views(env: RedisEnv, wait_s: float = SELF_VIEW_WAIT_S) -> list[str]:
    """A pod restarted by an interrupted move may still announce its old IP to itself (and to
    clients asking it for CLUSTER SLOTS): a MEET from a peer fixes that, checked until `wait_s`."""
    notes: list[str] = []
    met: set[str] = set()
    deadline = env.monotonic() + wait_s
    while True:
        sv = cleanup_survey(env, None)
        stale, meets, old = stale_selves(sv)
        for n in [n for n in meets if n not in met]:
            try:
                Executor(env, sv).run((meets[n],))
            except READ_ERRORS as exc:  # the peer did not answer: the next look tries again
                stale.append(f"{meets[n].pod} ({type(exc).__name__})")
                continue
            met.add(n)
            notes.append(f"{n}'s own view had its old IP {old[n]}: CLUSTER MEET {meets[n].ip} from a peer")
        if not stale:
            return notes
        if env.monotonic() > deadline:
            return [*notes, f"WARNING: own view of {', '.join(stale)} still not fixed"]
        env.sleep(SELF_VIEW_POLL_S)


def remove_temp(env: RedisEnv, name: str, *, wait_s: float | None = None) -> list[str]:
    ns = env.group.namespace
    wait_s = env.settings.redis_cleanup_wait_s if wait_s is None else wait_s
    sv = cleanup_survey(env, name)
    temp_id = temp_id_of(sv, name)
    if temp_id is None:
        Executor(env, sv).run((DeleteTemp(name),))
        return [f"temporary pod {name} never joined the cluster: deleted it"]
    ann = sv.temp.annotations if sv.temp else {}
    notes: list[str] = []
    deadline = env.monotonic() + wait_s
    issued: float | None = None
    announced: set[str] = set()
    while True:
        sv = cleanup_survey(env, name)  # re-read the pods each time: A may come back meanwhile
        due = issued is None or env.monotonic() - issued > FAILOVER_RETRY_S
        decision, holding = removal(sv, name, temp_id, announced, due)
        out = Executor(env, sv).run(decision.actions)
        announced.update(a.pod for a in decision.actions if isinstance(a, Announce))
        if any(isinstance(a, Failover) for a in decision.actions):
            issued = env.monotonic()
        notes += [*decision.notes, *out.notes]
        if isinstance(decision, Act):
            break
        if env.monotonic() > deadline:
            if holding:
                a_name = ann.get(FOR_POD_ANNOTATION, "")
                return [
                    *notes,
                    f"KEPT temporary pod {ns}/{name} ({short(temp_id)}): it is master of "
                    f"{ann.get(SLOTS_ANNOTATION, '?')} and {a_name} cannot take them back ({decision.reason}); removing it would "
                    f"uncover those slots. When {a_name} is a synced replica of it: CLUSTER FAILOVER on {a_name}, "
                    f"then CLUSTER FORGET {temp_id} on every node and delete the pod",
                ]
            return [*notes, f"KEPT temporary pod {ns}/{name}: {decision.reason}"]
        env.sleep(REMOVE_POLL_S)
    sv = cleanup_survey(env, name)
    running = sv.addrs()
    missing = sorted(set(sv.members) - set(running))
    out = Executor(env, sv).run((Forget(tuple(running), temp_id), DeleteTemp(name)))
    notes += out.notes
    if missing:
        notes.append(
            f"WARNING: {', '.join(missing)} did not run: they may gossip {short(temp_id)} back after 60 s; "
            f"run CLUSTER FORGET {temp_id} on them"
        )
    return notes + settle(env)


def settle(env: RedisEnv, wait_s: float = SETTLE_WAIT_S) -> list[str]:
    """After a FORGET a node may list a replica of the forgotten node without a master until
    that replica's next ping: announce lagging roles and wait (bounded) for a clean view."""
    deadline = env.monotonic() + wait_s
    announced: set[str] = set()
    while True:
        sv = cleanup_survey(env, None)
        running = sv.addrs()
        views, errors = sv.look(running)
        problems = cluster_problems(views, errors, None)
        if not problems:
            return []
        if env.monotonic() > deadline:
            return [f"WARNING: after the cleanup: {'; '.join(problems)}"]
        todo = [n for n in lagging_nodes(views) if n not in announced]
        Executor(env, sv).run(tuple(Announce(n, tuple(running), quiet=True) for n in todo))
        announced.update(todo)
        env.sleep(REMOVE_POLL_S)
