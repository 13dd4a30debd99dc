"""DrainNode with pods left retries within its invocation at inline_poll_s, up to inline_wait_s,
so a PDB chain moves when its budget frees rather than a back-off later, at few history events;
and WaitOwnersReady backs off while the same owners are pending, however their counts move."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bench.roll_scale import stateless
from eks_rolling.models import DrainNodeInput, NodeTarget, PollState, RollContext, WaitOwnersReadyOutput
from eks_rolling.services.deps import Deps
from eks_rolling.services.drain import drain_node
from eks_rolling.settings import Settings
from eks_rolling_sandbox.env import SandboxEnv

pytestmark = [pytest.mark.slow]
CTX = RollContext(
    execution_id="arn:aws:states:us-east-1:1:execution:x:run-1",
    asg_name="workers",
    cluster_name="",
    taint_value="run-1",
)


@pytest.fixture
def world() -> Iterator[tuple[SandboxEnv, NodeTarget]]:
    with SandboxEnv() as env:
        stateless(env, 2, 5)  # one Deployment of 10 over 2 nodes, its PDB maxUnavailable 1
        node = env.sandbox.store.list("nodes")[0][0]
        target = NodeTarget(instance_id="i-x", node_name=node["metadata"]["name"], az="us-east-1a")
        yield env, target


def _max_unavailable(env: SandboxEnv, value: int) -> None:
    def change(cur: dict) -> dict:  # type: ignore[type-arg]
        cur["spec"]["maxUnavailable"] = value
        cur["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
        return cur

    env.sandbox.store.mutate("poddisruptionbudgets", "apps", "svc-0", change)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = (env.sandbox.store.get("poddisruptionbudgets", "apps", "svc-0") or {}).get("status") or {}
        if st.get("disruptionsAllowed") == min(value, st.get("currentHealthy", 0)):
            return
        time.sleep(0.05)
    raise AssertionError("PDB never settled")


def _drain(env: SandboxEnv, target: NodeTarget, **settings: str) -> tuple[object, int]:
    since = time.time()
    with env.applied(**settings):
        out = drain_node(
            DrainNodeInput(ctx=CTX.model_copy(update={"cluster_name": env.cluster_name}), node=target),
            Deps(Settings()),
        )
    evictions = [e for e in env.sandbox.request_log.entries(since) if e.path.endswith("/eviction")]
    return out, len(evictions)


def test_a_drain_held_by_a_pdb_retries_in_the_call_then_comes_back_soon(
    world: tuple[SandboxEnv, NodeTarget],
) -> None:
    env, target = world
    _max_unavailable(env, 0)
    # Control: no in-call retry: one attempt per pod, then the state machine backs off
    out, attempts = _drain(env, target, inline_wait_s="0", inline_poll_s="1")
    pods = attempts
    assert pods >= 1 and out.blocked and out.next_wait_s >= 3  # type: ignore[attr-defined]
    # With 3 s in the call at 1 s: 4 rounds of attempts, and the next round 1 s later
    out, attempts = _drain(env, target, inline_wait_s="3", inline_poll_s="1")
    assert attempts == 4 * pods and out.blocked and out.next_wait_s == 1  # type: ignore[attr-defined]
    # ... and it is one round for the wave's history guard (eks_rolling.guard counts `attempt`)
    assert out.attempt == 1  # type: ignore[attr-defined]


def test_rounds_against_a_slow_api_server_end_the_call_on_the_clock(
    world: tuple[SandboxEnv, NodeTarget],
) -> None:
    env, target = world
    _max_unavailable(env, 0)
    # Given an API server that answers each eviction 0.6 s late (a round takes seconds)
    env.sandbox.faults.add(method="POST", path=r"/eviction$", delay_s=0.6)
    # When a drain may retry for 3 s in the call at 1 s
    t0 = time.monotonic()
    out, attempts = _drain(env, target, inline_wait_s="3", inline_poll_s="1")
    took = time.monotonic() - t0
    # Then it stops when its time is spent, not after 3 pauses (4 rounds: ~4 x the round + 3 s;
    # the test above is the control, at 4 rounds when rounds are quick), and comes back soon
    pods = len(
        [
            p
            for p in env.sandbox.store.list("pods", "apps")[0]
            if p["spec"].get("nodeName") == target.node_name
        ]
    )
    assert attempts < 4 * pods and took < 3 + 2 * 0.6 * pods + 1, (attempts, pods, took)
    assert out.blocked and out.next_wait_s == 1  # type: ignore[attr-defined]


def test_a_pdb_that_frees_during_the_call_lets_the_drain_move_in_the_same_call(
    world: tuple[SandboxEnv, NodeTarget],
) -> None:
    env, target = world
    _max_unavailable(env, 0)
    threading.Timer(1.5, _max_unavailable, (env, 1)).start()
    out, _ = _drain(env, target, inline_wait_s="10", inline_poll_s="1")
    assert out.evicted  # type: ignore[attr-defined]


def test_owners_wait_backs_off_while_the_same_owners_are_pending() -> None:
    # Counts that move (other nodes draining the same Deployment) are not progress
    t0 = datetime(2026, 12, 7, tzinfo=UTC)
    far = t0 + timedelta(hours=1)
    prev = None
    waits = []
    for ready in (6, 7, 8, 9, 8):
        detail = [f"Deployment apps/svc-0: {ready}/10 ready"]
        unchanged = prev is not None and prev.waiting_on == ["apps/svc-0"]
        idle, wait = PollState.pace(prev, detail, 5, 60, now=t0, deadline=far, unchanged=unchanged)
        prev = WaitOwnersReadyOutput(
            started_at=t0, deadline=far, idle=idle, next_wait_s=wait, detail=detail, waiting_on=["apps/svc-0"]
        )
        waits.append(wait)
    assert waits == [5, 10, 20, 40, 60]
    # Control: judged by its detail, every moved count restarts the wait at 5 s
    assert PollState.pace(prev, ["Deployment apps/svc-0: 9/10 ready"], 5, 60, now=t0, deadline=far) == (0, 5)
