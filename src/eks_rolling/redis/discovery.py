"""Redis groups, identified by opt-in annotations on their StatefulSets (pure: dicts in, groups out).

eks-rolling.io/redis-group: <group>               every StatefulSet of the group
eks-rolling.io/redis-kind: sentinel | cluster
eks-rolling.io/redis-role: master | replica | sentinel     (sentinel groups)
eks-rolling.io/redis-master-set: mymaster                  (sentinel groups)
eks-rolling.io/redis-password-secret: <secret>/<key>       (a Kubernetes Secret in the namespace)
eks-rolling.io/redis-password-secretsmanager: <arn>        (or AWS Secrets Manager)
eks-rolling.io/redis-tls: "true"                           (TLS to every node and sentinel)
eks-rolling.io/redis-tls-ca-secret: <secret>/<key>         (the CA that signed their certificates;
                                                            default: the system's CAs)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..labels import (
    REDIS_GROUP,
    REDIS_KIND,
    REDIS_MASTER_SET,
    REDIS_PASSWORD_SECRET,
    REDIS_PASSWORD_SECRETSMANAGER,
    REDIS_ROLE,
    REDIS_TLS,
    REDIS_TLS_CA_SECRET,
)

SENTINEL_ROLES = ("master", "replica", "sentinel")


@dataclass(frozen=True)
class CredentialRef:
    """Where a group's password lives; never the password itself."""

    source: Literal["kubernetes", "secretsmanager"]
    name: str  # Secret name or Secrets Manager ARN
    key: str = "password"


@dataclass(frozen=True)
class RedisGroup:
    namespace: str
    name: str
    kind: Literal["sentinel", "cluster"]
    statefulsets: Mapping[str, str]  # StatefulSet name -> role (master/replica/sentinel, or "node")
    master_set: str = "mymaster"
    password: CredentialRef | None = None
    tls: bool = False
    tls_ca: CredentialRef | None = None  # a Kubernetes Secret key holding a PEM CA bundle
    problems: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def statefulsets_with(self, role: str) -> list[str]:
        return sorted(s for s, r in self.statefulsets.items() if r == role)


def _credential(ann: Mapping[str, str]) -> CredentialRef | None:
    if ann.get(REDIS_PASSWORD_SECRETSMANAGER):
        return CredentialRef("secretsmanager", ann[REDIS_PASSWORD_SECRETSMANAGER], "")
    ref = ann.get(REDIS_PASSWORD_SECRET)
    if not ref:
        return None
    name, _, key = ref.partition("/")
    return CredentialRef("kubernetes", name, key or "password")


def _ca_ref(ann: Mapping[str, str]) -> CredentialRef | None:
    ref = ann.get(REDIS_TLS_CA_SECRET)
    if not ref:
        return None
    name, _, key = ref.partition("/")
    return CredentialRef("kubernetes", name, key or "ca.crt")


def discover_groups(statefulsets: Iterable[Mapping[str, Any]]) -> list[RedisGroup]:
    """Group opted-in StatefulSets (plain Kubernetes JSON) by namespace and group name. Metadata
    that does not make a coherent group is reported in `problems` (the plan blocks on it)."""
    members: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sts in statefulsets:
        ann = (sts.get("metadata") or {}).get("annotations") or {}
        if ann.get(REDIS_GROUP):
            members.setdefault((sts["metadata"]["namespace"], ann[REDIS_GROUP]), []).append(sts)
    groups = []
    for (ns, name), stss in sorted(members.items()):
        anns = [s["metadata"].get("annotations") or {} for s in stss]
        kinds = {a.get(REDIS_KIND) for a in anns}
        problems: list[str] = []
        for s, a in zip(stss, anns, strict=True):
            if a.get(REDIS_KIND) not in ("sentinel", "cluster"):
                problems.append(
                    f"StatefulSet {ns}/{s['metadata']['name']} has {REDIS_KIND}={a.get(REDIS_KIND)!r}: "
                    "expected sentinel or cluster"
                )
        kind = next(iter(kinds)) if len(kinds) == 1 else None
        if kind not in ("sentinel", "cluster"):
            if not problems:
                problems.append(
                    f"StatefulSets of Redis group {ns}/{name} disagree on {REDIS_KIND} (got {sorted(str(k) for k in kinds)})"
                )
            kind = "sentinel"
        roles: dict[str, str] = {}
        for s, a in zip(stss, anns, strict=True):
            role = a.get(REDIS_ROLE, "node" if kind == "cluster" else "")
            if kind == "sentinel" and role not in SENTINEL_ROLES:
                problems.append(
                    f"StatefulSet {ns}/{s['metadata']['name']} has no valid {REDIS_ROLE} (master, replica or sentinel)"
                )
            roles[s["metadata"]["name"]] = role
        if kind == "sentinel":
            for needed in ("master", "sentinel"):
                if needed not in roles.values():
                    problems.append(f"Redis group {ns}/{name} has no StatefulSet with role {needed}")
        creds = {_credential(a) for a in anns} - {None}
        if len(creds) > 1:
            problems.append(f"StatefulSets of Redis group {ns}/{name} name different password secrets")
        cas = {_ca_ref(a) for a in anns} - {None}
        if len(cas) > 1:
            problems.append(f"StatefulSets of Redis group {ns}/{name} name different TLS CA secrets")
        tls = any(a.get(REDIS_TLS, "").lower() == "true" for a in anns)
        if cas and not tls:
            problems.append(
                f'Redis group {ns}/{name} names {REDIS_TLS_CA_SECRET} without {REDIS_TLS}: "true"'
            )
        groups.append(
            RedisGroup(
                namespace=ns,
                name=name,
                kind=kind,  # type: ignore[arg-type]
                statefulsets=roles,
                master_set=next((a[REDIS_MASTER_SET] for a in anns if a.get(REDIS_MASTER_SET)), "mymaster"),
                password=next(iter(creds), None),
                tls=tls,
                tls_ca=next(iter(cas), None),
                problems=tuple(problems),
            )
        )
    return groups
