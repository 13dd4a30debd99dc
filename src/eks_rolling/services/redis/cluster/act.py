"""Redis Cluster: the writes shared by the phases and the cleanup: announcing a node's role,
forgetting the temporary node everywhere, creating the temporary pod."""

from __future__ import annotations

import copy
import logging
from typing import Any

from ....errors import (
    ConflictError,
    RedisTempNodeError,
    RetryableError,
)
from ....models import RedisMove
from ....redis.cluster import ranges_text
from ..procedure import RedisEnv
from .survey import (
    FOR_ID_ANNOTATION,
    FOR_POD_ANNOTATION,
    GROUP_LABEL,
    RUN_LABEL,
    SLOTS_ANNOTATION,
    TEMP_FOR_LABEL,
    ZONE_LABEL,
    Addr,
    Views,
    admin,
    label_safe,
    lagging_nodes,
)

log = logging.getLogger(__name__)


def announce(env: RedisEnv, addrs: dict[str, Addr], who: str) -> None:
    """A node's new role reaches the others with its gossip, up to node-timeout/2 later. A MEET
    from it to each of them (already known: the handshake entry is dropped on the reply) carries
    its role in the packet header at once."""
    with admin(env, addrs[who]) as n:
        for name, addr in addrs.items():
            if name != who:
                n.meet(*addr)


def nudge(env: RedisEnv, move: RedisMove, addrs: dict[str, Addr], views: Views) -> RedisMove:
    """Announce (once per phase and node) the role of every node others have not caught up with."""
    done = list(move.data.get("announced") or [])
    for name in lagging_nodes(views):
        if name not in done and name in addrs:
            announce(env, addrs, name)
            done.append(name)
    return move.model_copy(update={"data": {**move.data, "announced": done}})


def forget_everywhere(env: RedisEnv, addrs: dict[str, Addr], node_id: str) -> tuple[list[str], float]:
    """FORGET on every address, back to back: the 60 s ban (Redis 7.0) must start everywhere
    before any node could gossip the forgotten node back. Raises if a node refuses."""
    t0 = env.monotonic()
    done: list[str] = []
    for name, addr in addrs.items():
        with admin(env, addr) as n:
            n.forget(node_id)
        done.append(name)
    return done, (env.monotonic() - t0) * 1000


def ensure_temp(move: RedisMove, env: RedisEnv) -> bool:
    """Create the temporary pod unless this run's is already there. True if created now."""
    ns, d = env.group.namespace, move.data
    name = str(d["temp"])
    existing = env.kube.get_pod(ns, name)
    if existing is not None:
        run = (existing.metadata.labels or {}).get(RUN_LABEL)
        if run != env.ctx.taint_value:
            raise RedisTempNodeError(
                f"pod {ns}/{name} exists and is not this run's temporary pod (run {run})"
            )
        return False
    sts = env.kube.statefulset(ns, move.statefulset)
    if sts is None:
        raise RedisTempNodeError(f"StatefulSet {ns}/{move.statefulset} of {move.ref} is gone")
    body = temp_body(env, move, env.kube.sanitize(sts.spec.template), sts)
    try:
        env.kube.create_pod(ns, body)
    except ConflictError:
        return False  # created by a concurrent attempt of this phase: the next round checks it
    except RetryableError:
        raise
    except Exception as exc:  # 4xx: the template cannot run as a plain pod here
        raise RedisTempNodeError(f"could not create temporary pod {ns}/{name}: {exc}") from exc
    return True


def temp_body(env: RedisEnv, move: RedisMove, tpl: dict[str, Any], sts: Any) -> dict[str, Any]:
    d = move.data
    spec = copy.deepcopy(tpl.get("spec") or {})
    for key in ("nodeName", "hostname", "subdomain"):
        spec.pop(key, None)
    # Claim volumes are mounted but not in the template's volumes (the controller adds them):
    # an empty volume each, so the temp node starts with a fresh nodes.conf (422 otherwise).
    volumes = list(spec.get("volumes") or [])
    have = {v["name"] for v in volumes}
    mounted = {
        m["name"]
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
        for m in c.get("volumeMounts") or []
    }
    volumes += [{"name": n, "emptyDir": {}} for n in sorted(mounted - have)]
    spec["volumes"] = volumes
    # Nothing that tolerates our taint: the taint alone keeps it off every old node.
    key = env.settings.taint_key
    spec["tolerations"] = [
        t
        for t in spec.get("tolerations") or []
        if not (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
    ]
    zone_expr = {"key": ZONE_LABEL, "operator": "In", "values": [d["zone"]]}
    required = (
        spec.setdefault("affinity", {})
        .setdefault("nodeAffinity", {})
        .setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    )
    terms = required.get("nodeSelectorTerms") or [{}]
    for term in terms:  # terms are ORed: each one gets the zone
        term.setdefault("matchExpressions", []).append(zone_expr)
    required["nodeSelectorTerms"] = terms
    tpl_md = tpl.get("metadata") or {}
    # Only our labels: out of the StatefulSet's selector, its Services and its PDBs.
    labels = {
        TEMP_FOR_LABEL: label_safe(move.pod),
        RUN_LABEL: env.ctx.taint_value,
        GROUP_LABEL: label_safe(env.group.name),
    }
    annotations = {
        **(tpl_md.get("annotations") or {}),
        FOR_POD_ANNOTATION: move.pod,
        FOR_ID_ANNOTATION: str(d["node_id"]),
        SLOTS_ANNOTATION: ranges_text(d["slots"]),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": d["temp"],
            "namespace": env.group.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }
