"""Per-node hooks through the real state machine on the sandbox: a pre-drain Lambda hook (a
function in moto whose handler runs in-process) and a post-replace HTTPS hook (an endpoint on
loopback that verifies each request's SigV4 signature), each called for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials

from eks_rolling.labels import LABEL_TOPOLOGY_ZONE
from eks_rolling_sandbox.cloud.hooks import HttpsHookServer, create_hook_function
from eks_rolling_sandbox.env import DUMMY_CREDENTIALS
from tests.e2e.conftest import Field, leftovers, states_entered

pytestmark = [pytest.mark.slow]


@pytest.fixture
def endpoint(field: Field) -> Iterator[HttpsHookServer]:
    assert field.env.tls is not None
    creds = ReadOnlyCredentials(
        DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    with HttpsHookServer(field.env.tls, creds, region=field.env.region) as server:
        yield server


def hook_outputs(history: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    """The hook steps' outputs, as the Lambda returned them (the audit trail of each call)."""
    outs = [
        json.loads(e["lambdaFunctionSucceededEventDetails"]["output"])
        for e in history
        if e["type"] == "LambdaFunctionSucceeded"
    ]
    return [o for o in outs if isinstance(o, dict) and o.get("phase") == phase]


def plan_of(history: list[dict[str, Any]]) -> dict[str, Any]:
    """PlanRoll's output, as the Lambda returned it."""
    return next(
        json.loads(e["lambdaFunctionSucceededEventDetails"]["output"])
        for e in history
        if e["type"] == "LambdaFunctionSucceeded"
        and '"estimated_history_events"' in e["lambdaFunctionSucceededEventDetails"]["output"]
    )


def old_nodes(field: Field) -> dict[str, tuple[str, str]]:
    """instance id -> (node name, zone) of the roll's old nodes."""
    ids = {i.instance_id for i in field.state().instances}
    out = {}
    for n in field.env.sandbox.store.all("nodes"):
        iid = n["spec"]["providerID"].rsplit("/", 1)[-1]
        if iid in ids:
            out[iid] = (n["metadata"]["name"], n["metadata"]["labels"][LABEL_TOPOLOGY_ZONE])
    return out


def test_hooks_are_called_once_per_replaced_node_with_the_payload_and_a_verified_signature(
    field: Field, endpoint: HttpsHookServer
) -> None:
    # Given a pre-drain Lambda hook and a post-replace HTTPS hook, set for the roll
    arn, pre = create_hook_function(field.env.aws("lambda"), field.env.aws("iam"), "pre-drain-check")
    old = old_nodes(field)
    before, ca_before = field.state(), field.autoscaler_replicas()
    # When the launch template changes
    with field.runner(
        pre_drain_hooks=arn,
        post_replace_hooks=endpoint.url,
        hook_ca_file=str(field.env.tls.ca),  # type: ignore[union-attr]
    ) as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    # Then the roll succeeds and each hook was called exactly once per replaced node
    assert result["status"] == "SUCCEEDED", result.get("cause")
    replaced = {i for i in old if i not in {x.instance_id for x in field.state().instances}}
    assert replaced == set(old)
    roll = result["executionArn"]

    def expected(phase: str) -> list[dict[str, Any]]:
        return sorted(
            (
                {
                    "phase": phase,
                    "roll": roll,
                    "asg": field.scenario.asg_name,
                    "node": name,
                    "instance_id": iid,
                    "az": az,
                }
                for iid, (name, az) in old.items()
            ),
            key=lambda b: b["instance_id"],
        )

    def got(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(bodies, key=lambda b: b["instance_id"])

    assert got(pre.bodies()) == expected("pre_drain")
    assert got(endpoint.recorder.bodies()) == expected("post_replace")
    # ... every HTTPS call carried a valid SigV4 signature (recomputed by the endpoint)
    assert all(c.verified for c in endpoint.recorder.calls) and endpoint.refused == []
    # ... each pre-drain call came before any eviction on its node, each post-replace after its
    # instance was terminated
    entered = [n for n, _ in states_entered(history)]
    assert entered.count("PreDrainHooks") == entered.count("PostReplaceHooks") == len(old)
    pre_out, post_out = hook_outputs(history, "pre_drain"), hook_outputs(history, "post_replace")
    assert [c["target"] for o in pre_out for c in o["calls"]] == [arn] * len(old)
    assert all(c["ok"] and c["attempts"] == 1 for o in pre_out + post_out for c in o["calls"])
    assert [c["target"] for o in post_out for c in o["calls"]] == [endpoint.url] * len(old)
    order = [
        (n, (inp.get("node") or {}).get("instance_id"))
        for n, inp in states_entered(history)
        if n in {"PreDrainHooks", "DrainNode", "TerminateInstance", "PostReplaceHooks"}
    ]
    for iid in old:
        steps = [n for n, i in order if i == iid]
        assert steps[0] == "PreDrainHooks" and steps[1] == "DrainNode", steps
        assert steps[-2:] == ["TerminateInstance", "PostReplaceHooks"], steps
    # ... the plan listed the hooks and where they came from, and budgeted their events
    plan = plan_of(history)
    assert (
        plan["hooks"]["pre_drain"] == [arn] and plan["hooks"]["pre_drain_from"] == "setting pre_drain_hooks"
    )
    assert plan["hooks"]["post_replace"] == [endpoint.url]
    print(
        f"hooks roll: {len(old)} nodes, {len(pre.calls)} pre-drain Lambda calls, "
        f"{len(endpoint.recorder.calls)} signed HTTPS calls, {len(history)} history events of "
        f"{plan['estimated_history_events']} budgeted"
    )
    assert len(history) <= plan["estimated_history_events"]
    assert leftovers(field, before, ca_before) == []


def test_a_failing_pre_drain_hook_stops_the_roll_before_any_eviction_and_rollback_restores(
    field: Field,
) -> None:
    # Given a pre-drain Lambda hook that refuses every node
    arn, pre = create_hook_function(field.env.aws("lambda"), field.env.aws("iam"), "pre-drain-refuses")
    pre.fail = True
    before, ca_before = field.state(), field.autoscaler_replicas()
    instances = {i.instance_id for i in before.instances}
    mark = field.env.sandbox.request_log.mark()
    # When the launch template changes
    with field.runner(pre_drain_hooks=arn, hook_attempts="3", hook_backoff_s="0.2") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    # Then the roll fails with HookFailedError naming the hook, a node and the hook's answer
    assert result["status"] == "FAILED", result
    assert result["error"] == "HookFailedError", result.get("cause")
    cause = result["cause"]
    assert arn in cause and "after 3 attempt(s)" in cause and "injected: hook pre-drain-refuses" in cause
    called = {b["node"] for b in pre.bodies()}
    assert called and any(node in cause for node in called)
    # ... each node of the first batch was asked 3 times, and no eviction was ever made
    assert len(pre.calls) == 3 * len(called)
    evictions = [
        e
        for e in field.env.sandbox.request_log.entries(mark)
        if e.method == "POST" and e.path.endswith("/eviction")
    ]
    assert evictions == []
    assert "DrainNode" not in [n for n, _ in states_entered(history)]
    took = (result["stopDate"] - result["startDate"]).total_seconds()
    print(f"failing hook: {len(pre.calls)} calls for {sorted(called)}, roll failed after {took:.1f} s")
    # ... no old instance was terminated, and Rollback restored taints, autoscaler, processes, max
    assert instances <= {i.instance_id for i in field.state().instances}
    assert "Rollback" in [n for n, _ in states_entered(history)]
    assert leftovers(field, before, ca_before) == []
