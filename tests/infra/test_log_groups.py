"""Log groups are the audit trail: they survive a stack delete, and never block the next create.

A retained group with a fixed name makes the next create fail with "already exists" (after a destroy
and redeploy, or after a failed first create: CloudFormation DeletionPolicy docs, serverless#3237,
SAM#1819). Each name here carries the stack's own id, new for every stack created.
"""

from __future__ import annotations

from tests.infra.cdk_support import FAKE_STACK_ID, PSEUDO, Synth, resolve

STEPS_AND_STATE_MACHINE = 24  # 22 steps, the roll's and its waves' state machines


def test_every_log_group_is_retained_on_delete_and_replacement_but_not_after_a_failed_create(
    synth: Synth,
) -> None:
    groups = synth.resources("AWS::Logs::LogGroup")
    assert len(groups) == STEPS_AND_STATE_MACHINE
    for group_id, group in groups.items():
        assert group.get("DeletionPolicy") == "RetainExceptOnCreate", group_id
        assert group.get("UpdateReplacePolicy") == "Retain", group_id


def test_a_new_stack_never_meets_the_retained_groups_of_a_deleted_one(synth: Synth) -> None:
    # Given the same template created twice: before and after a `cdk destroy`
    second = {**PSEUDO, "AWS::StackId": FAKE_STACK_ID.replace("1a2b3c4d-", "9f8e7d6c-")}
    for group_id, group in synth.resources("AWS::Logs::LogGroup").items():
        name = group["Properties"].get("LogGroupName")
        if name is None:
            continue  # CloudFormation generates a unique name
        # Then each creation names its groups differently, and still readably
        first_name, second_name = resolve(name, synth.template), resolve(name, synth.template, second)
        assert first_name != second_name, group_id
        assert "1a2b3c4d" in first_name and "9f8e7d6c" in second_name, group_id
        assert first_name.startswith(("/aws/vendedlogs/states/eks-rolling-", "/eks-rolling-")), first_name
