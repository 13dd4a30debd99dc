"""The Redis Cluster procedure's executor: the only code that writes to Redis or Kubernetes for a
move (the cleanup shares its writes). Each action is safe to run again: a round that dies
mid-way is decided afresh next round."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from ....errors import (
    ConflictError,
    RedisTempNodeError,
    RetryableError,
)
from ....redis.cluster import ranges_text
from ..procedure import Evict, Outcome, RedisEnv, run_actions
from .model import (
    Action,
    Announce,
    Configure,
    CreateTemp,
    Failover,
    Forget,
    Meet,
    Replicate,
)
from .survey import (
    FOR_ID_ANNOTATION,
    FOR_POD_ANNOTATION,
    GROUP_LABEL,
    READ_ERRORS,
    RUN_LABEL,
    SLOTS_ANNOTATION,
    TEMP_FOR_LABEL,
    ZONE_LABEL,
    Addr,
    Survey,
    admin,
    label_safe,
    short,
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


def ensure_temp(env: RedisEnv, a: CreateTemp) -> bool:
    """Create the temporary pod unless this run's is already there. True if created now."""
    ns, name = env.group.namespace, a.temp
    existing = env.kube.get_pod(ns, name)
    if existing is not None:
        run = (existing.metadata.labels or {}).get(RUN_LABEL)
        if run != env.ctx.taint_value:
            raise RedisTempNodeError(
                f"pod {ns}/{name} exists and is not this run's temporary pod (run {run})"
            )
        return False
    sts = env.kube.statefulset(ns, a.statefulset)
    if sts is None:
        raise RedisTempNodeError(f"StatefulSet {ns}/{a.statefulset} of {ns}/{a.pod} is gone")
    body = temp_body(env, a, env.kube.sanitize(sts.spec.template))
    try:
        env.kube.create_pod(ns, body)
    except ConflictError:
        return False  # created by a concurrent attempt of this phase: the next round checks it
    except RetryableError:
        raise
    except Exception as exc:  # 4xx: the template cannot run as a plain pod here
        raise RedisTempNodeError(f"could not create temporary pod {ns}/{name}: {exc}") from exc
    return True


def temp_body(env: RedisEnv, a: CreateTemp, tpl: dict[str, Any]) -> dict[str, Any]:
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
    zone_expr = {"key": ZONE_LABEL, "operator": "In", "values": [a.zone]}
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
        TEMP_FOR_LABEL: label_safe(a.pod),
        RUN_LABEL: env.ctx.taint_value,
        GROUP_LABEL: label_safe(env.group.name),
    }
    annotations = {
        **(tpl_md.get("annotations") or {}),
        FOR_POD_ANNOTATION: a.pod,
        FOR_ID_ANNOTATION: a.node_id,
        SLOTS_ANNOTATION: ranges_text(a.slots),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": a.temp,
            "namespace": env.group.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


@dataclass
class Executor:
    env: RedisEnv
    survey: Survey  # where the actions' pods are (by name)

    def run(self, actions: tuple[Action, ...]) -> Outcome:
        return run_actions(actions, self._one, Outcome())

    def _one(self, a: Action, out: Outcome) -> None:
        env, at = self.env, self.survey.addr
        if isinstance(a, Evict):
            out.blocked = env.evict(a.pod, a.uid)
        elif isinstance(a, CreateTemp):
            created = ensure_temp(env, a)
            out.notes.append(
                f"{'created' if created else 'found'} temporary pod {a.temp} from StatefulSet "
                f"{a.statefulset}'s template in {a.zone}"
            )
        elif isinstance(a, Configure):
            with admin(env, at(a.pod)) as n:
                n.config_set(a.name, a.value)
        elif isinstance(a, Meet):
            with admin(env, at(a.pod)) as n:
                n.meet(a.ip, a.port)
        elif isinstance(a, Announce):
            try:
                announce(env, {name: at(name) for name in a.among}, a.pod)
            except READ_ERRORS:
                if not a.quiet:
                    raise
        elif isinstance(a, Replicate):
            with admin(env, at(a.pod)) as n:
                n.replicate(a.master_id)
        elif isinstance(a, Failover):
            with admin(env, at(a.pod)) as n:
                if n.role() != "master":
                    n.failover()
        elif isinstance(a, Forget):
            forgot, ms = forget_everywhere(env, {name: at(name) for name in a.on}, a.node_id)
            out.notes.append(f"CLUSTER FORGET {short(a.node_id)} on {len(forgot)} nodes in {ms:.1f} ms")
        else:
            env.kube.delete_pod(env.group.namespace, a.temp)
            out.notes.append(f"deleted temporary pod {a.temp}")
