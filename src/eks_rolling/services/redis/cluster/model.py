"""The typed state of a Redis Cluster move, as kept in RedisMove.data (the JSON keys the phases
write). Each round validates the stored state against it, so a key misspelt or of the wrong type
is a clear error at the start of a round, not a KeyError half-way through a phase."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Phase = Literal[
    "start",
    "restart",
    "temp_start",
    "temp_join",
    "temp_sync",
    "failover_to_temp",
    "a_restart",
    "failover_to_a",
    "temp_remove",
    "done",
]
Kind = Literal["master", "replica", "empty-master", "unknown"]


class ClusterMoveState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # the pod at discovery
    uid: str
    node: str | None = None
    ip: str | None = None
    # what start found
    kind: Kind | None = None
    node_id: str | None = None
    slots: list[list[int]] | None = None  # A's slot ranges (master path)
    zone: str | None = None
    started: str | None = None  # ISO time the move started
    # the temporary node T
    temp: str | None = None
    temp_id: str | None = None
    temp_ip: str | None = None
    temp_node: str | None = None
    # the failovers
    failover_at: float | None = None  # epoch seconds the last CLUSTER FAILOVER was sent
    failover_tries: int | None = None
    # A back on a new node
    new_ip: str | None = None
    new_node: str | None = None
    # measured
    failover_to_temp_s: float | None = None
    failback_s: float | None = None
    total_s: float | None = None
    # bookkeeping of the current phase
    announced: list[str] | None = None  # nodes whose role was announced (once per phase)
    waiting: str | None = None
    throttled: int | None = None  # consecutive refused evictions
