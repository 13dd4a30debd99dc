"""Build the CDK app: typed config from context, the Lambda package, the stack, cdk-nag."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from .config import load_config
from .packaging import ROOT, LambdaPackage, prepare
from .stack import EksRollingStack

STACK_ID = "EksRolling"


def project_context(root: Path = ROOT, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Context as the cdk CLI would pass it: cdk.json "context", then cdk.context.json, then -c."""
    context: dict[str, Any] = {}
    for name in ("cdk.json", "cdk.context.json"):
        path = root / name
        if path.is_file():
            data = json.loads(path.read_text())
            context.update(data.get("context", {}) if name == "cdk.json" else data)
    context.update(overrides or {})
    return context


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    package: LambdaPackage | None = None,
    outdir: str | None = None,
    nag: bool = True,
) -> tuple[App, EksRollingStack]:
    """The app and its one stack. `context=None` reads what the cdk CLI passed (CDK_CONTEXT_JSON).

    Fails before touching anything with ConfigError (context), DefinitionError (ASL) or
    PackagingError (layer); with cdk-nag on, `app.synth()` fails on any unacknowledged finding.
    """
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    config = load_config(app.node.get_all_context())
    stack = EksRollingStack(
        app,
        STACK_ID,
        stack_name=f"eks-rolling-{config.cluster_name}",
        config=config,
        package=package or prepare(),
    )
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
