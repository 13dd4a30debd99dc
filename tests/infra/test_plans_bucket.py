"""The plans bucket: PlanRoll writes a large plan's waves, TaintOldNodes and the wave machine read
them, under the waves/ prefix only, and nobody else touches it."""

from __future__ import annotations

from eks_rolling.steps import BY_ID
from tests.infra.cdk_support import Synth, allowed, function_role, resolve, role_statements
from tests.infra.test_iam import all_role_statements


def _objects(synth: Synth) -> str:
    (bucket_id,) = synth.resources("AWS::S3::Bucket")
    return str(resolve({"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/waves/*"]]}, synth.template))


def test_only_plan_roll_writes_and_only_taint_and_the_wave_machine_read(synth: Synth) -> None:
    objects = _objects(synth)
    fns = synth.functions_by_handler()
    steps = ("plan_roll", "taint_old_nodes", "taint_remaining_nodes", "revert_target")
    roles = {step: function_role(fns[BY_ID[step].handler][1]) for step in steps}
    _, wave = synth.wave_machine()
    wave_role = wave["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    s3_statements = {
        role: [s for s in statements if any(a.startswith("s3:") for a in s.actions)]
        for role, statements in all_role_statements(synth).items()
    }
    users = {role for role, statements in s3_statements.items() if statements}
    assert users == {*roles.values(), wave_role}
    # the revert's plan (revert_on_alarm) is stored as PlanRoll's is; the later waves' taint reads it
    for role, action in ((roles["plan_roll"], "s3:PutObject"), (roles["taint_old_nodes"], "s3:GetObject"),
                         (roles["taint_remaining_nodes"], "s3:GetObject"),
                         (roles["revert_target"], "s3:PutObject"), (wave_role, "s3:GetObject")):  # fmt: skip
        (statement,) = s3_statements[role]
        assert statement.actions == (action,) and statement.resources == (objects,)
    assert allowed(role_statements(synth.template, roles["plan_roll"]), "s3:GetObject") == []


def test_the_bucket_is_private_encrypted_tls_only_and_expires_plans(synth: Synth) -> None:
    ((bucket_id, bucket),) = synth.resources("AWS::S3::Bucket").items()
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert [r["ExpirationInDays"] for r in props["LifecycleConfiguration"]["Rules"]] == [7]
    (policy,) = synth.resources("AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    # ... and the two steps that use it are told its name
    for step in ("plan_roll", "taint_old_nodes"):
        env = synth.functions_by_handler()[BY_ID[step].handler][1]["Properties"]["Environment"]["Variables"]
        assert env["EKS_ROLLING_PLAN_BUCKET"] == {"Ref": bucket_id}
