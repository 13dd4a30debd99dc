"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized stack."""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from tests.infra.cdk_support import FAKE_REGION, Synth

# CDK adds DependsOn on a role next to the GetAtt of the same role (Lambda functions, the state
# machine): redundant, and harmless.
CFN_LINT_IGNORED = ("W3005",)


@pytest.mark.parametrize("which", ["synth", "variant"])
def test_cdk_nag_reports_no_unacknowledged_finding(which: str, request: pytest.FixtureRequest) -> None:
    # Given the app synthesized with AwsSolutionsChecks (an error would have failed synth already)
    synth: Synth = request.getfixturevalue(which)
    (report,) = [r for r in synth.validation_report()["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    # Then nothing is left, and every acknowledgment says why
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    for finding in report["suppressedViolations"]:
        assert len(finding["reason"]) >= 40, finding["ruleName"]


def test_acknowledged_rules_are_the_reviewed_ones(synth: Synth) -> None:
    (report,) = synth.validation_report()["pluginReports"]
    rules = {f["ruleName"].split("[")[0] for f in report["suppressedViolations"]}
    # IAM5: wildcards only where ids are unknown or the action has no resource-level permission;
    # L1: python3.12 on purpose; SQS3: the queue is itself a dead-letter queue; S1: the plans
    # bucket holds transient copies (infra/plans.py), no access log.
    assert rules == {"AwsSolutions-IAM5", "AwsSolutions-L1", "AwsSolutions-SQS3", "AwsSolutions-S1"}
    iam5 = {
        f["ruleName"] for f in report["suppressedViolations"] if f["ruleName"].startswith("AwsSolutions-IAM5")
    }
    allowed_wildcards = (
        "Resource::*]",
        ":network-interface/*]",
        ":autoScalingGroupName/*]",
        ".Arn>:*]",
        ":parameter/aws/service/*]",  # AWS's public parameters (resolve:ssm: AMI aliases)
        f":execution:eks-rolling-{synth.context['cluster_name']}:*]",  # this state machine's runs
        f":execution:eks-rolling-{synth.context['cluster_name']}-wave:*]",  # its waves (child runs)
        ".Arn>/waves/*]",  # the plans bucket's per-wave objects (infra/plans.py)
    )
    assert all(r.endswith(allowed_wildcards) for r in iam5), iam5


@pytest.mark.parametrize("which", ["synth", "variant"])  # variant: the CloudTrail trail, the drift check
def test_cfn_lint_passes(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    template = synth.outdir / f"{synth.stack.artifact_id}.template.json"
    matches = lint_file(template, ManualArgs(ignore_checks=list(CFN_LINT_IGNORED), regions=[FAKE_REGION]))
    assert [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches] == []
