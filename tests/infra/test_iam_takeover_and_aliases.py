"""IAM for taking over a dead run's lock and for `resolve:ssm:` AMI aliases.

AcquireLock asks Step Functions whether the lock's holder still runs, and when it does not, takes
the lock over and restores what the dead run left, as that run's Rollback would have: it needs
Rollback's rights. Every step that reads an Auto Scaling group may have to resolve a launch
template's `resolve:ssm:/aws/service/...` ImageId to compare it with each instance's AMI.
"""

from __future__ import annotations

import pytest

from eks_rolling.steps import BY_ID, STEPS, Step
from infra.access import DESCRIBE_ASG_ACTIONS
from tests.infra.cdk_support import FAKE_ACCOUNT, FAKE_REGION, Synth, allowed, function_role, role_statements

PUBLIC_PARAMETERS = "arn:aws:ssm:*::parameter/aws/service/*"


def grants(synth: Synth, step: Step) -> set[tuple[str, str]]:
    """(action, resource) pairs the step's role allows, conditions aside."""
    _, fn = synth.functions_by_handler()[step.handler]
    return {
        (a, r)
        for s in role_statements(synth.template, function_role(fn))
        if s.effect == "Allow"
        for a in s.actions
        for r in s.resources
    }


def _machine(synth: Synth, resource: str, suffix: str = "") -> str:
    name = f"eks-rolling-{synth.context['cluster_name']}{suffix}"
    return f"arn:aws:states:{FAKE_REGION}:{FAKE_ACCOUNT}:{resource}:{name}" + (
        ":*" if resource == "execution" else ""
    )


def test_only_acquire_lock_may_describe_this_state_machines_executions(synth: Synth) -> None:
    executions, waves = _machine(synth, "execution"), _machine(synth, "execution", "-wave")
    for step in STEPS:
        described = {r for a, r in grants(synth, step) if a == "states:DescribeExecution"}
        expected = {"acquire_lock": {executions}, "rollback": {waves}}.get(step.id, set())
        assert described == expected, step.id


def test_only_rollback_may_list_and_stop_the_waves(synth: Synth) -> None:
    for step in STEPS:
        granted = {
            (a, r) for a, r in grants(synth, step) if a in ("states:ListExecutions", "states:StopExecution")
        }
        expected = (
            {
                ("states:ListExecutions", _machine(synth, "stateMachine", "-wave")),
                ("states:StopExecution", _machine(synth, "execution", "-wave")),
            }
            if step.id == "rollback"
            else set()
        )
        assert granted == expected, step.id


def test_acquire_lock_may_do_whatever_rollback_may(synth: Synth) -> None:
    rollback, acquire = grants(synth, BY_ID["rollback"]), grants(synth, BY_ID["acquire_lock"])
    own_logs = {(a, r) for a, r in rollback if a.startswith("logs:")}  # each writes its own group
    # Stopping the waves is not needed to take a dead run's lock: Step Functions stops a stopped
    # parent's .sync children itself (the sandbox does too, eks_rolling_sandbox.cloud.sfn_children).
    waves = {
        (a, r) for a, r in rollback if r.startswith(_machine(synth, "stateMachine", "-wave")) or "-wave:" in r
    }
    assert own_logs and waves and rollback - own_logs - waves - acquire == set()
    # ... including the Kubernetes side (untaint, cluster-autoscaler, Redis temp pods)
    entries = {e["Properties"]["Username"] for e in synth.resources("AWS::EKS::AccessEntry").values()}
    assert "eks-rolling:acquire_lock" in entries
    # ... and it learns where to tell people about the takeover
    _, fn = synth.functions_by_handler()[BY_ID["acquire_lock"].handler]
    assert "EKS_ROLLING_NOTIFY_TOPIC_ARN" in fn["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_every_step_that_reads_groups_may_resolve_public_ami_aliases(synth: Synth, step: Step) -> None:
    granted = grants(synth, step)
    reads_groups = ("autoscaling:DescribeAutoScalingGroups", "*") in granted
    ssm = {(a, r) for a, r in granted if a.startswith("ssm:")}
    expected = {("ssm:GetParameter", PUBLIC_PARAMETERS), ("ssm:GetParameters", PUBLIC_PARAMETERS)}
    assert ssm == (expected if reads_groups else set()), step.id


def test_resolve_target_and_the_group_readers(synth: Synth) -> None:
    readers = {s.id for s in STEPS if ("autoscaling:DescribeAutoScalingGroups", "*") in grants(synth, s)}
    assert {"resolve_target", "plan_roll", "wait_new_nodes", "acquire_lock", "rollback"} <= readers
    # an override's own launch template (MixedInstancesPolicy) is read like the top-level one
    assert all(("ec2:DescribeLaunchTemplateVersions", "*") in grants(synth, BY_ID[r]) for r in readers)
    assert "ec2:DescribeLaunchTemplateVersions" in DESCRIBE_ASG_ACTIONS


def test_capacity_changes_stay_on_opted_in_groups_for_every_step_that_makes_them(synth: Synth) -> None:
    tag = f"autoscaling:ResourceTag/{synth.context['opt_in_tag_key']}"
    updaters = set()
    for step in STEPS:
        _, fn = synth.functions_by_handler()[step.handler]
        for s in allowed(
            role_statements(synth.template, function_role(fn)), "autoscaling:UpdateAutoScalingGroup"
        ):
            updaters.add(step.id)
            assert s.conditions["StringEquals"] == {tag: synth.context["opt_in_tag_value"]}
    assert updaters == {"surge_capacity", "restore_cluster", "rollback", "acquire_lock", "revert_target"}
