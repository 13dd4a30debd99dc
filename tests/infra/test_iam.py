"""Least privilege, checked on the synthesized template (what a security review reads)."""

from __future__ import annotations

import pytest

from eks_rolling.steps import STEPS, Step
from infra.access import ASG_MUTATIONS, DESCRIBE_ASG_ACTIONS
from infra.steps import STEP_NEEDS, Need, StepRegistryError, check_registry, needs_of
from tests.infra.cdk_support import (
    FAKE_ACCOUNT,
    FAKE_REGION,
    Statement,
    Synth,
    allowed,
    function_role,
    role_statements,
)

IDS = [s.id for s in STEPS]
ASG_ARN = f"arn:aws:autoscaling:{FAKE_REGION}:{FAKE_ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/*"
MUTATING_ASG = {a for actions in ASG_MUTATIONS.values() for a in actions}
# The only actions allowed on "*": none of them supports resource-level permissions.
NO_RESOURCE_LEVEL = {
    *DESCRIBE_ASG_ACTIONS,
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions log delivery to CloudWatch Logs (vended logs)
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def step_statements(synth: Synth, step: Step) -> list[Statement]:
    _, fn = synth.functions_by_handler()[step.handler]
    return role_statements(synth.template, function_role(fn))


def all_role_statements(synth: Synth) -> dict[str, list[Statement]]:
    return {rid: role_statements(synth.template, rid) for rid in synth.resources("AWS::IAM::Role")}


def test_every_function_has_its_own_role(synth: Synth) -> None:
    roles = [function_role(fn) for fn in synth.resources("AWS::Lambda::Function").values()]
    assert len(set(roles)) == len(STEPS)


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(synth: Synth) -> None:
    for role_id, statements in all_role_statements(synth).items():
        for s in statements:
            if "*" in s.resources:
                assert set(s.actions) <= NO_RESOURCE_LEVEL, (role_id, s.actions)
            assert not any("*" in a for a in s.actions), (role_id, s.actions)


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_asg_mutations_only_on_opted_in_groups(synth: Synth, step: Step) -> None:
    tag = f"autoscaling:ResourceTag/{synth.context['opt_in_tag_key']}"
    for s in step_statements(synth, step):
        if set(s.actions) & MUTATING_ASG:
            assert s.resources == (ASG_ARN,)
            assert s.conditions["StringEquals"] == {tag: synth.context["opt_in_tag_value"]}


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_bookkeeping_tags_cannot_touch_other_keys(synth: Synth, step: Step) -> None:
    for s in step_statements(synth, step):
        if {"autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"} & set(s.actions):
            assert s.conditions["ForAllValues:StringLike"] == {"aws:TagKeys": ["eks-rolling/saved/*"]}
            assert s.conditions["Null"] == {"aws:TagKeys": "false"}


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_each_step_gets_exactly_its_asg_actions(synth: Synth, step: Step) -> None:
    # Given what infra/steps.py says the step needs
    needs = needs_of(step)
    expected = {a for n in needs for a in ASG_MUTATIONS.get(n, ())}
    if Need.DESCRIBE_ASG in needs:
        expected |= set(DESCRIBE_ASG_ACTIONS)
    # Then its role allows exactly those Auto Scaling / EC2 instance actions
    granted = {
        a
        for s in step_statements(synth, step)
        for a in s.actions
        if a.startswith("autoscaling:") or a in DESCRIBE_ASG_ACTIONS
    }
    assert granted == expected


def test_describe_cluster_only_on_the_cluster(synth: Synth) -> None:
    cluster = f"arn:aws:eks:{FAKE_REGION}:{FAKE_ACCOUNT}:cluster/{synth.context['cluster_name']}"
    for statements in all_role_statements(synth).values():
        assert not any(
            a.startswith("eks:") and a != "eks:DescribeCluster" for s in statements for a in s.actions
        )
        for s in allowed(statements, "eks:DescribeCluster"):
            assert s.resources == (cluster,)


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_kubernetes_steps_get_an_access_entry_and_the_cluster(synth: Synth, step: Step) -> None:
    _, fn = synth.functions_by_handler()[step.handler]
    role_id = function_role(fn)
    entries = [
        e["Properties"]
        for e in synth.resources("AWS::EKS::AccessEntry").values()
        if e["Properties"]["PrincipalArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    ]
    uses_kube = Need.KUBERNETES in needs_of(step)
    assert bool(allowed(step_statements(synth, step), "eks:DescribeCluster")) is uses_kube
    if not uses_kube:
        assert entries == []
        return
    (entry,) = entries
    assert entry["ClusterName"] == synth.context["cluster_name"]
    assert entry["KubernetesGroups"] == [synth.context["kubernetes_group"]]
    assert entry["Type"] == "STANDARD"
    assert entry["Username"] == f"eks-rolling:{step.id}"
    assert "AccessPolicies" not in entry  # rights come from deploy/rbac.yaml, not EKS access policies


def test_dynamodb_only_on_the_lock_table_and_each_step_on_its_own_locks(synth: Synth) -> None:
    (table_id,) = synth.resources("AWS::DynamoDB::Table")
    grants: dict[str, set[tuple[str, str]]] = {}
    for role_id, statements in all_role_statements(synth).items():
        for s in statements:
            if any(a.startswith("dynamodb:") for a in s.actions):
                assert s.resources == (f"<{table_id}>",), role_id
                (prefix,) = s.conditions["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                grants.setdefault(role_id, set()).update((a, prefix) for a in s.actions)
    steps = {function_role(synth.functions_by_handler()[s.handler][1]): s.id for s in STEPS}
    get, put, delete = "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"
    assert {steps[r]: g for r, g in grants.items()} == {
        # a dead run's lock taken over: its Redis group locks released as its Rollback would
        "acquire_lock": {(get, "asg#*"), (put, "asg#*"), (get, "redis#*"), (delete, "redis#*")},
        # before each wave: renew this run's lock and read the operator's control on it
        "check_gate": {("dynamodb:UpdateItem", "asg#*")},
        "await_window": {("dynamodb:UpdateItem", "asg#*")},
        "release_lock": {(delete, "asg#*")},
        "move_redis_pods": {(get, "redis#*"), (put, "redis#*"), (delete, "redis#*")},
        "restore_cluster": {(get, "redis#*"), (delete, "redis#*")},
        "rollback": {(get, "redis#*"), (delete, "redis#*")},
    }


@pytest.mark.parametrize("step", STEPS, ids=IDS)
def test_only_publishers_may_publish(synth: Synth, step: Step) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    (key_id,) = synth.resources("AWS::KMS::Key")
    statements = step_statements(synth, step)
    publish = allowed(statements, "sns:Publish")
    if Need.NOTIFY in needs_of(step):
        assert [s.resources for s in publish] == [(f"<{topic_id}>",)]
        assert [s.resources for s in allowed(statements, "kms:GenerateDataKey")] == [(f"<{key_id}>",)]
    else:
        assert publish == []
    assert {"acquire_lock", "plan_roll", "await_window", "check_gate", "terminate_instance", "rollback"} == {
        s.id for s in STEPS if Need.NOTIFY in needs_of(s)
    }


def test_redis_secrets_only_when_configured_and_only_those(synth: Synth, variant: Synth) -> None:
    for statements in all_role_statements(synth).values():
        assert not any(a.startswith("secretsmanager:") for s in statements for a in s.actions)
    readers = set()
    for step in STEPS:
        for s in step_statements(variant, step):
            if any(a.startswith("secretsmanager:") for a in s.actions):
                assert s.actions == ("secretsmanager:GetSecretValue",)
                assert s.resources == (variant.context["redis_secret_arns"],)
                readers.add(step.id)
    assert readers == {s.id for s in STEPS if Need.READ_REDIS_SECRETS in needs_of(s)}


def test_hook_functions_only_when_configured_only_those_and_only_for_the_hook_steps(
    synth: Synth, variant: Synth
) -> None:
    for step in STEPS:
        assert allowed(step_statements(synth, step), "lambda:InvokeFunction") == [], step.id
    invokers = set()
    for step in STEPS:
        for s in allowed(step_statements(variant, step), "lambda:InvokeFunction"):
            assert s.actions == ("lambda:InvokeFunction",)
            assert s.resources == (variant.context["hook_functions"],)  # no wildcard, no qualifier
            invokers.add(step.id)
    assert invokers == {"pre_drain_hooks", "post_replace_hooks"}
    callers = set()
    for step in STEPS:
        assert allowed(step_statements(synth, step), "execute-api:Invoke") == [], step.id
        for s in allowed(step_statements(variant, step), "execute-api:Invoke"):
            assert s.actions == ("execute-api:Invoke",) and s.resources == (variant.context["hook_api_arns"],)
            callers.add(step.id)
    assert callers == invokers


def test_health_alarms_only_when_configured_only_those_and_only_for_the_gate_steps(
    synth: Synth, variant: Synth
) -> None:
    for step in STEPS:
        assert allowed(step_statements(synth, step), "cloudwatch:DescribeAlarms") == [], step.id
    readers = set()
    arn = f"arn:aws:cloudwatch:{FAKE_REGION}:{FAKE_ACCOUNT}:alarm:"
    for step in STEPS:
        for s in allowed(step_statements(variant, step), "cloudwatch:DescribeAlarms"):
            assert s.actions == ("cloudwatch:DescribeAlarms",)
            assert s.resources == (f"{arn}checkout-5xx", f"{arn}payments-latency")  # no wildcard
            readers.add(step.id)
    assert readers == {"plan_roll", "await_window", "check_gate"}


def test_pointing_back_may_launch_and_pass_only_the_node_roles_and_only_with_revert_on(
    synth: Synth, variant: Synth
) -> None:
    for step in STEPS:
        for action in ("iam:PassRole", "ec2:RunInstances"):
            assert allowed(step_statements(synth, step), action) == [], step.id
    for step in STEPS:
        passing = allowed(step_statements(variant, step), "iam:PassRole")
        launching = allowed(step_statements(variant, step), "ec2:RunInstances")
        if step.id != "revert_target":
            assert passing == launching == [], step.id
            continue
        (p,) = passing
        assert p.resources == (variant.context["node_role_arns"],)
        assert p.conditions == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
        (launch,) = launching
        assert "*" not in launch.resources and all(f":{FAKE_REGION}:" in r for r in launch.resources)


def test_custom_opt_in_tag_is_the_condition(variant: Synth) -> None:
    surge = next(s for s in STEPS if s.id == "surge_capacity")
    (statement,) = allowed(step_statements(variant, surge), "autoscaling:UpdateAutoScalingGroup")
    assert statement.conditions["StringEquals"] == {
        "autoscaling:ResourceTag/example.com/eks-rolling": "prod-eks"
    }


def test_vpc_attachment_is_scoped_to_the_configured_network(synth: Synth) -> None:
    ec2 = f"arn:aws:ec2:{FAKE_REGION}:{FAKE_ACCOUNT}"
    expected = {
        f"{ec2}:network-interface/*",
        *(f"{ec2}:subnet/{s}" for s in synth.context["subnet_ids"]),
        *(f"{ec2}:security-group/{g}" for g in synth.context["security_group_ids"]),
    }
    for step in STEPS:
        (create,) = allowed(step_statements(synth, step), "ec2:CreateNetworkInterface")
        assert set(create.resources) == expected


def test_the_registry_covers_every_step() -> None:
    check_registry()
    assert set(STEP_NEEDS) == {s.id for s in STEPS}


def test_a_step_without_permissions_fails_synth() -> None:
    with pytest.raises(StepRegistryError, match="cordon_node"):
        check_registry((*STEPS, Step("cordon_node")))
    with pytest.raises(StepRegistryError, match="cordon_node"):
        needs_of(Step("cordon_node"))


def test_trigger_may_only_start_this_state_machine(synth: Synth) -> None:
    machine_id, machine = synth.roll_machine()
    wave_id, _ = synth.wave_machine()
    roll_role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = all_role_statements(synth)
    starters = [
        s
        for role, role_statements in statements.items()
        if role != roll_role
        for s in role_statements
        if any(a.startswith("states:") and a != "states:DescribeExecution" for a in s.actions)
        and not all(r.endswith(("-wave", "-wave:*")) for r in s.resources)
    ]  # DescribeExecution: AcquireLock's; the waves: Rollback's (test_iam_takeover_and_aliases.py)
    assert starters and all(s.actions == ("states:StartExecution",) for s in starters)
    assert all(s.resources == (f"<{machine_id}>",) for s in starters)
    # ... and the roll itself starts only its waves (startExecution.sync:2), follows and stops them
    own = [s for s in statements[roll_role] if any(a.startswith("states:") for a in s.actions)]
    assert {a for s in own for a in s.actions} == {
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
    }
    (start,) = [s for s in own if "states:StartExecution" in s.actions]
    assert start.resources == (f"<{wave_id}>",)
    assert all(
        r.endswith(f":execution:eks-rolling-{synth.context['cluster_name']}-wave:*")
        for s in own
        if s is not start
        for r in s.resources
    )
