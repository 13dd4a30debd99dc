"""Connections to Redis nodes and sentinels: one plain client per address (redis-py's Sentinel
object fans admin commands out to every sentinel, which is never what a careful operator wants)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis

from .discovery import RedisGroup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedisAuth:
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None


def connect(host: str, port: int, auth: RedisAuth, *, timeout_s: float = 2.0) -> redis.Redis:
    kw: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "decode_responses": True,
        "retry": None,
    }
    if auth.password:
        kw["password"] = auth.password
    if auth.tls:
        # The chain is always verified (against the group's CA, else the system's). Not the
        # hostname: nodes are reached by pod IP, which a StatefulSet's certificates rarely name.
        kw.update(ssl=True, ssl_ca_certs=auth.ca_file, ssl_cert_reqs="required", ssl_check_hostname=False)
    return redis.Redis(host=host, port=port, **kw)


def resolve_auth(group: RedisGroup, *, read_k8s_secret: Any, read_sm_secret: Any, write_ca: Any) -> RedisAuth:
    """The group's password from a Kubernetes Secret or Secrets Manager; TLS per group, with the
    CA bundle from the Secret its annotation names (written to a file by `write_ca`)."""
    password = None
    ref = group.password
    if ref is not None and ref.source == "kubernetes":
        password = read_k8s_secret(group.namespace, ref.name, ref.key)
    elif ref is not None:
        password = read_sm_secret(ref.name)
    ca_file = None
    if group.tls and group.tls_ca is not None:
        pem = read_k8s_secret(group.namespace, group.tls_ca.name, group.tls_ca.key)
        if not pem:
            raise LookupError(
                f"Redis group {group.ref}: TLS CA {group.tls_ca.name}/{group.tls_ca.key} is empty"
            )
        ca_file = write_ca(pem)
    log.debug("auth for Redis group %s: password=%s tls=%s", group.ref, password is not None, group.tls)
    return RedisAuth(password=password, tls=group.tls, ca_file=ca_file)


def info(client: redis.Redis, section: str) -> dict[str, Any]:
    out: dict[str, Any] = client.info(section)
    return out


RedisError = redis.RedisError
