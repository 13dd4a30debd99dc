"""The Redis Cluster procedure's test field: a field-report sandbox with only the Redis Cluster
(2 zones, 3 masters + 3 replicas on real redis-server processes), one new node per zone and the
old nodes carrying this run's taint (the `cluster` fixture in tests/integration/services/redis),
and a driver that plays the state machine's MoveRedisPods loop (a fresh `Deps` per round, as
Lambda gives; the Wait between rounds is shortened)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from redis.cluster import ClusterNode, RedisCluster

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE, REDIS_PORT, REDIS_TEMP_FOR
from eks_rolling.models import MoveRedisPodsInput, MoveRedisPodsOutput, NodeTarget, RollContext
from eks_rolling.services.deps import Deps
from eks_rolling.services.redis import (
    PROCEDURES,
    env_for,
    groups_of,
    move_redis_pods,
    redis_cleanup,
)
from eks_rolling.services.redis.procedure import GroupHealth
from eks_rolling.settings import Settings
from eks_rolling_sandbox.env import SandboxEnv
from eks_rolling_sandbox.redis import procs as redis_procs
from eks_rolling_sandbox.scenarios import Scenario
from eks_rolling_sandbox.traffic.writers import ClusterWriter
from tests.factories.redis import requires_redis, run_context

NS, GROUP = "redis", "redis-cluster"
RUN = "it-redis-cluster"


@dataclass
class ClusterField:
    env: SandboxEnv
    scenario: Scenario
    layout: dict[str, Any]
    settings: dict[str, str] = field(default_factory=dict)
    ctx: RollContext = field(default_factory=lambda: run_context(RUN))

    # --- the cluster as the tests see it -----------------------------------------------------
    def pod(self, name: str) -> dict[str, Any]:
        pod = self.env.sandbox.store.get("pods", NS, name)
        assert pod is not None, name
        return pod

    def ip(self, name: str) -> str:
        return str(self.pod(name)["status"]["podIP"])

    def zone_of_node(self, node: str) -> str:
        n = self.env.sandbox.store.get("nodes", None, node)
        assert n is not None
        return str(n["metadata"]["labels"][LABEL_TOPOLOGY_ZONE])

    def members(self) -> list[str]:
        return sorted(self.layout["ips"])

    def master_pod(self, zone_index: int = 0) -> str:
        """A master pod of `azs[zone_index]`."""
        zone = self.scenario.azs[zone_index]
        return next(m for m in self.layout["masters"] if self.layout["zones"][m] == zone)

    def nodes_view(self, name: str) -> list[redis_procs.ClusterNodeInfo]:
        return redis_procs.cluster_nodes(self.ip(name), REDIS_PORT)

    def temp_pods(self) -> list[dict[str, Any]]:
        return [
            p
            for p in self.env.sandbox.store.all("pods")
            if REDIS_TEMP_FOR in (p["metadata"].get("labels") or {})
        ]

    def assert_consistent(self, *, masters: dict[str, tuple[int, int]] | None = None) -> None:
        """Every group pod: cluster_state ok, all slots served, ids kept, no stranger node."""
        ids = set(self.layout["node_ids"].values())
        for name in self.members():
            info = redis_procs.cluster_info(self.ip(name), REDIS_PORT)
            assert info["cluster_state"] == "ok" and info["cluster_slots_ok"] == "16384", (name, info)
            view = self.nodes_view(name)
            assert {n["id"] for n in view} == ids, (name, [(n["id"][:8], n["ip"], n["flags"]) for n in view])
            me = next(n for n in view if "myself" in n["flags"])
            assert me["id"] == self.layout["node_ids"][name] and me["ip"] == self.ip(name)
            if masters is not None:
                owners = {
                    n["id"]: tuple(n["slots"][0]) for n in view if "master" in n["flags"] and n["slots"]
                }
                assert owners == {self.layout["node_ids"][m]: tuple(r) for m, r in masters.items()}, name

    # --- the tool ----------------------------------------------------------------------------
    def deps(self) -> Deps:
        return Deps(Settings())

    def target(self, pod: str) -> NodeTarget:
        node = self.pod(pod)["spec"]["nodeName"]
        n = self.env.sandbox.store.get("nodes", None, node)
        assert n is not None
        iid = n["spec"]["providerID"].rsplit("/", 1)[-1]
        return NodeTarget(instance_id=iid, node_name=node, az=self.zone_of_node(node), pods=1)

    def drive(
        self,
        node: NodeTarget,
        *,
        timeout: float = 120,
        until_phase: str | None = None,
        repeat: bool = False,
        start: MoveRedisPodsOutput | None = None,
    ) -> tuple[MoveRedisPodsOutput, list[str]]:
        """MoveRedisPods rounds until done (or the move reached `until_phase`); raises what a
        round raises, as the Lambda would. `repeat` runs every round twice from the same input
        and keeps the second output: a Step Functions retry after a lost response."""
        out: MoveRedisPodsOutput | None = start
        actions: list[str] = []
        deadline = time.monotonic() + timeout
        with self.env.applied(**self.settings):
            while True:
                inp = MoveRedisPodsInput(ctx=self.ctx, node=node, redis=out)
                if repeat:
                    actions += move_redis_pods(inp, self.deps()).actions
                out = move_redis_pods(inp, self.deps())
                actions += out.actions
                if out.done or (until_phase and any(m.phase == until_phase for m in out.moves)):
                    return out, actions
                assert time.monotonic() < deadline, (out.moves, actions)
                time.sleep(0.05)

    def cleanup(self) -> list[str]:
        """What Rollback and RestoreCluster run: the run's context only, no move state."""
        with self.env.applied(**self.settings):
            return redis_cleanup(self.ctx, self.deps())

    def health(self) -> GroupHealth:
        """What PlanRoll asks of the procedure."""
        with self.env.applied(**self.settings):
            deps = self.deps()
            (group,) = [g for g in groups_of(deps.kube(self.ctx.cluster_name)) if g.name == GROUP]
            return PROCEDURES["cluster"].health(env_for(group, self.ctx, deps))

    def taint(self, nodes: list[str], key: str, value: str = "true", *, remove: bool = False) -> None:
        with self.env.applied():
            kube = self.deps().kube(self.ctx.cluster_name)
            for n in nodes:
                if remove:
                    kube.remove_taint(n, key)
                else:
                    kube.add_taint(n, key, value)

    def new_nodes(self, zone: str) -> list[str]:
        return sorted(
            n["metadata"]["name"]
            for n in self.env.sandbox.store.all("nodes")
            if n["metadata"]["labels"].get(LABEL_TOPOLOGY_ZONE) == zone
            and n["metadata"]["labels"].get("role") == "worker"
            and not any(t["key"] == Settings().taint_key for t in n["spec"].get("taints") or [])
        )

    # --- a client writing through the whole test ----------------------------------------------
    def writer(self) -> ClusterWriter:
        w = ClusterWriter(
            [(self.ip(n), REDIS_PORT) for n in self.members()], interval_s=0.005, max_seconds=120
        )
        w.start()
        return w

    def lost(self, writer: ClusterWriter) -> int:
        """Stop the writer; acknowledged writes missing, read through the pods' current IPs."""
        writer.stop()
        nodes = [ClusterNode(self.ip(n), REDIS_PORT) for n in self.members()]  # type: ignore[no-untyped-call]
        lost = writer.verify(lambda: RedisCluster(startup_nodes=nodes, decode_responses=True))
        assert writer.acked_count > 100, writer.report()
        return lost


requires = [requires_redis]
