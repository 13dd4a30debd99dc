"""Operator controls through the real state machine on the sandbox: scope (which old nodes a roll
may touch), do-not-disrupt pods and their deadline, per-AZ sequencing."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from eks_rolling.labels import (
    DO_NOT_DISRUPT,
    DO_NOT_DISRUPT_DEADLINE,
    EXCLUDE_NODE,
    KARPENTER_DO_NOT_DISRUPT,
    LABEL_TOPOLOGY_ZONE,
    TAG_NODE_SELECTOR,
    TAINT_RETIRING,
)
from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import pod_is_ready
from tests.e2e.conftest import Field, leftovers, states_entered
from tests.factories.k8s import finish_pod, job_pod

pytestmark = [pytest.mark.slow]
JOBS = "shop"


def old_workers(field: Field) -> dict[str, tuple[str, str]]:
    """node name -> (instance id, zone) of the roll's old nodes."""
    ids = {i.instance_id for i in field.state().instances}
    out = {}
    for n in field.env.sandbox.store.all("nodes"):
        iid = n["spec"]["providerID"].rsplit("/", 1)[-1]
        if iid in ids:
            out[n["metadata"]["name"]] = (iid, n["metadata"]["labels"][LABEL_TOPOLOGY_ZONE])
    return out


def touched_nodes(field: Field, mark: float) -> set[str]:
    """Nodes the tool wrote to (taint, label) since `mark`."""
    return {
        e.path.rsplit("/", 1)[-1]
        for e in field.env.sandbox.request_log.entries(mark)
        if e.method == "PATCH" and e.path.startswith("/api/v1/nodes/")
    }


def plan_of(history: list[dict[str, Any]]) -> dict[str, Any]:
    """PlanRoll's output, as the Lambda returned it."""
    return next(
        json.loads(e["lambdaFunctionSucceededEventDetails"]["output"])
        for e in history
        if e["type"] == "LambdaFunctionSucceeded"
        and '"out_of_scope"' in e["lambdaFunctionSucceededEventDetails"]["output"]
    )


def test_a_scoped_roll_touches_only_its_nodes(field: Field) -> None:
    # Given 6 old nodes over 2 zones; the roll is limited to zone a and one zone-a node is excluded
    old = old_workers(field)
    zone_a = sorted(n for n, (_, z) in old.items() if z == field.scenario.azs[0])
    excluded = zone_a[0]
    field.env.sandbox.store.mutate(
        "nodes",
        None,
        excluded,
        lambda n: n["metadata"].setdefault("annotations", {}).update({EXCLUDE_NODE: "true"}),
    )
    in_scope = set(zone_a[1:])
    before, ca_before = field.state(), field.autoscaler_replicas()
    mark = field.env.sandbox.request_log.mark()
    # When the launch template changes
    with field.runner(node_selector=f"{LABEL_TOPOLOGY_ZONE}={field.scenario.azs[0]}") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=240)
        history = runner.history(result["executionArn"])
    # Then the roll succeeds, replacing exactly the in-scope nodes' instances
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after_ids = {i.instance_id for i in field.state().instances}
    assert {old[n][0] for n in in_scope}.isdisjoint(after_ids)
    out_of_scope = set(old) - in_scope
    assert {old[n][0] for n in out_of_scope} <= after_ids  # the others keep their instance
    # ... the others were never tainted, labelled or drained (no write to them at all)
    assert touched_nodes(field, mark) & out_of_scope == set()
    drained = {
        (inp.get("node") or {}).get("node_name")
        for name, inp in states_entered(history)
        if name == "DrainNode"
    }
    assert drained == in_scope
    # ... the plan said what was out and why
    plan = plan_of(history)
    assert plan["out_of_scope"] == 4
    why = {e["node_name"]: e["reason"] for e in plan["excluded"]}
    assert EXCLUDE_NODE in why[excluded]
    assert all("node selector (setting)" in why[n] for n in out_of_scope - {excluded})
    # ... and everything paused was restored
    assert leftovers(field, before, ca_before) == []


def test_a_bad_scope_selector_stops_the_roll_before_any_change(field: Field) -> None:
    # Given an ASG whose node-selector tag does not parse
    name = field.scenario.asg_name
    field.env.aws("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": TAG_NODE_SELECTOR,
                "Value": "role in (worker",
                "PropagateAtLaunch": False,
            }
        ]
    )
    event = field.scenario.bump_launch_template()
    before, ca_before = field.state(), field.autoscaler_replicas()
    mark = field.env.sandbox.request_log.mark()
    with field.runner() as runner:
        result = runner.run(event, timeout=60)
        names = [n for n, _ in states_entered(runner.history(result["executionArn"]))]
    # Then it fails naming the tag and the bad part, and nothing was changed
    assert result["status"] == "FAILED" and result["error"] == "InvalidInputError", result.get("cause")
    assert TAG_NODE_SELECTOR in result["cause"] and "unbalanced" in result["cause"]
    assert "PauseAutoscaler" not in names
    assert not field.env.sandbox.request_log.writes(mark)
    assert leftovers(field, before, ca_before) == []
    after = field.state()
    assert (after.desired, after.max_size) == (before.desired, before.max_size)


def _held_node(field: Field, annotations: dict[str, str]) -> tuple[str, str]:
    """A Job pod on the first old node in zone a, running, with `annotations`."""
    old = old_workers(field)
    node = sorted(n for n, (_, z) in old.items() if z == field.scenario.azs[0])[0]
    job_pod(field.env.sandbox, "nightly-report", node, namespace=JOBS, annotations=annotations)
    field.env.sandbox.wait_for(
        lambda: (
            field.env.sandbox.store.require("pods", JOBS, "nightly-report")["status"].get("phase")
            == "Running"
        ),
        timeout=20,
        what="job pod running",
    )
    return node, "nightly-report"


def _evictions_of(field: Field, mark: float, pod: str) -> list[Any]:
    return [
        e
        for e in field.env.sandbox.request_log.entries(mark)
        if e.method == "POST" and e.path.endswith(f"/pods/{pod}/eviction")
    ]


def test_a_do_not_disrupt_pod_holds_its_node_until_it_finishes(field: Field) -> None:
    # Given a Job pod annotated with Karpenter's do-not-disrupt on an old node
    node, pod = _held_node(field, {KARPENTER_DO_NOT_DISRUPT: "true"})
    before, ca_before = field.state(), field.autoscaler_replicas()
    mark = field.env.sandbox.request_log.mark()
    finished: dict[str, float] = {}

    def finish_when_held() -> None:
        # Its node's other pods are gone (the drain ran) while the Job still runs: then it ends.
        sb = field.env.sandbox
        deadline = time.time() + 200
        while time.time() < deadline:
            tainted = any(
                t["key"] == TAINT_RETIRING
                for t in sb.store.require("nodes", None, node)["spec"].get("taints") or []
            )
            others = [
                p
                for p in sb.store.all("pods")
                if p["spec"].get("nodeName") == node
                and p["metadata"]["name"] != pod
                and (p["metadata"].get("ownerReferences") or [{}])[0].get("kind") != "DaemonSet"
            ]
            if tainted and not others:
                time.sleep(4.0)
                finished["at"] = time.time()
                finish_pod(sb, JOBS, pod)
                return
            time.sleep(0.2)

    finisher = threading.Thread(target=finish_when_held, daemon=True)
    finisher.start()
    # When the roll runs (waits for do-not-disrupt pods double from 5 s up to 40 s)
    with field.runner(do_not_disrupt_poll_cap_s="40", do_not_disrupt_timeout_s="600") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    finisher.join(timeout=5)
    # Then the roll succeeds, the pod was never evicted, and its node went only after it finished
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert "at" in finished
    assert _evictions_of(field, mark, pod) == []
    terminated = [
        e["timestamp"]
        for e in history
        if (e.get("stateEnteredEventDetails") or {}).get("name") == "TerminateInstance"
        and f'"{node}"' in e["stateEnteredEventDetails"]["input"]
    ]
    assert terminated and terminated[0].timestamp() > finished["at"]
    # ... the plan listed it, and the held rounds stayed few (the wait doubles, bounded by the budget)
    plan = plan_of(history)
    assert [h["ref"] for h in plan["held"]] == [f"{JOBS}/{pod}"]
    drains = [
        inp
        for name, inp in states_entered(history)
        if name == "DrainNode" and (inp.get("node") or {}).get("node_name") == node
    ]
    print(
        f"held node: {len(drains)} DrainNode rounds; {len(history)} history events of {plan['estimated_history_events']} budgeted"
    )
    assert 2 <= len(drains) <= 12, len(drains)
    assert len(history) <= plan["estimated_history_events"]
    assert leftovers(field, before, ca_before) == []


def test_a_do_not_disrupt_deadline_stops_the_roll_with_a_named_error_and_rollback_restores(
    field: Field,
) -> None:
    # Given a Job that will not finish, annotated do-not-disrupt with a 20 s deadline
    _node, pod = _held_node(field, {DO_NOT_DISRUPT: "true", DO_NOT_DISRUPT_DEADLINE: "20s"})
    before, ca_before = field.state(), field.autoscaler_replicas()
    mark = field.env.sandbox.request_log.mark()
    started = datetime.now().timestamp()
    # When the roll reaches its node (the default: stop at the deadline)
    with field.runner(do_not_disrupt_poll_cap_s="40") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    # Then it fails with DoNotDisruptDeadlineError naming the pod, never evicting it
    assert result["status"] == "FAILED", result
    assert result["error"] == "DoNotDisruptDeadlineError", result.get("cause")
    assert f"{JOBS}/{pod}" in result["cause"]
    assert _evictions_of(field, mark, pod) == []
    assert field.env.sandbox.store.require("pods", JOBS, pod)["status"]["phase"] == "Running"
    # ... it held at least the deadline, and Rollback restored everything
    assert datetime.now().timestamp() - started >= 20
    assert "Rollback" in [n for n, _ in states_entered(history)]
    assert leftovers(field, before, ca_before) == []


def test_per_az_sequencing_never_has_two_zones_in_flight(field: Field) -> None:
    # Given 6 old nodes over 2 zones, batches of 2, and per-AZ sequencing on
    old = old_workers(field)
    with field.runner(az_sequential="true") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        history = runner.history(result["executionArn"])
    assert result["status"] == "SUCCEEDED", result.get("cause")
    # Then from the history: each zone's node work (first step on a node to its termination)
    # lies wholly before or after every other zone's
    spans: dict[str, list[float]] = {}
    for e in history:
        d = e.get("stateEnteredEventDetails")
        if not d:
            continue
        node = (json.loads(d.get("input") or "{}").get("node") or {}).get("node_name")
        if node in old:
            spans.setdefault(old[node][1], []).append(e["timestamp"].timestamp())
    windows = sorted((min(v), max(v), z) for z, v in spans.items())
    assert len(windows) == 2, windows
    print(
        f"zone windows: {[(z, round(b - a, 1)) for a, b, z in windows]}, gap {round(windows[1][0] - windows[0][1], 1)} s"
    )
    assert windows[0][1] < windows[1][0], windows
    # ... and the batches themselves never mix zones
    batches = [inp["batch"] for name, inp in states_entered(history) if name == "SurgeCapacity"]
    assert [len({n["az"] for n in b}) for b in batches] == [1] * len(batches)
    assert len(batches) == 4


def test_a_manual_start_scoped_to_instance_ids_rolls_only_those(field: Field) -> None:
    # Given a changed launch template and an operator who starts a roll of two instances by hand
    old = old_workers(field)
    chosen = sorted(old)[:2]
    field.scenario.bump_launch_template()
    payload = {"asgName": field.scenario.asg_name, "instanceIds": [old[n][0] for n in chosen]}
    mark = field.env.sandbox.request_log.mark()
    with field.runner() as runner:
        result = runner.run(payload, timeout=240)
        history = runner.history(result["executionArn"])
    # Then only those two were replaced; the plan names the start input as the reason for the rest
    assert result["status"] == "SUCCEEDED", result.get("cause")
    after_ids = {i.instance_id for i in field.state().instances}
    assert {old[n][0] for n in chosen}.isdisjoint(after_ids)
    assert {old[n][0] for n in set(old) - set(chosen)} <= after_ids
    assert touched_nodes(field, mark) & (set(old) - set(chosen)) == set()
    plan = plan_of(history)
    assert plan["out_of_scope"] == 4
    assert {e["reason"] for e in plan["excluded"]} == {"not in the instance ids (start input)"}


def test_at_its_deadline_a_do_not_disrupt_pod_is_evicted_when_configured(field: Field) -> None:
    # Given a one-replica Deployment whose pods are do-not-disrupt for 15 s, and the
    # evict-at-deadline setting (a Deployment: the sandbox has no Job controller to recreate a pod)
    sb = field.env.sandbox
    annotations = {DO_NOT_DISRUPT: "true", DO_NOT_DISRUPT_DEADLINE: "15s"}
    runner_dep = m.deployment("batch-runner", JOBS, 1, nodeSelector={"role": "worker"})
    runner_dep["spec"]["template"]["metadata"]["annotations"] = annotations
    sb.apply(runner_dep)
    sb.wait_for(
        lambda: any(pod_is_ready(p) for p in sb.pods(JOBS, "app=batch-runner")), timeout=30, what="ready"
    )
    placed: dict[str, str] = {}
    stop = threading.Event()

    def watch() -> None:  # which node each of its pods ran on (gone from the store once evicted)
        while not stop.is_set():
            placed.update(
                {p["metadata"]["name"]: p["spec"].get("nodeName") for p in sb.pods(JOBS, "app=batch-runner")}
            )
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    mark = sb.request_log.mark()
    with field.runner(do_not_disrupt_on_deadline="evict", do_not_disrupt_poll_cap_s="40") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=400)
        history = runner.history(result["executionArn"])
    stop.set()
    watcher.join(timeout=5)
    # Then the roll succeeds; each of its pods on an old node was evicted once, 15 s or more
    # after that node's drain began
    assert result["status"] == "SUCCEEDED", result.get("cause")
    evictions = [
        e
        for e in sb.request_log.entries(mark)
        if e.method == "POST" and "/pods/batch-runner-" in e.path and e.path.endswith("/eviction")
    ]
    assert evictions
    for e in evictions:
        node = placed[e.path.split("/pods/")[1].split("/")[0]]
        began = min(
            ev["timestamp"].timestamp()
            for ev in history
            if (ev.get("stateEnteredEventDetails") or {}).get("name") == "DrainNode"
            and f'"{node}"' in ev["stateEnteredEventDetails"]["input"]
        )
        assert e.at - began >= 15, (e.path, e.at - began)
