"""CDK entry point: `cdk synth` / `cdk deploy` run this (cdk.json "app"). `make synth` runs the
same app through `python -m infra.synth`, which needs no cdk CLI."""

from __future__ import annotations

import os

from infra.node import use_bundled_node


def main() -> None:
    use_bundled_node()  # before aws_cdk is imported
    from infra.app import build_app, project_context

    # Under the cdk CLI (which sets CDK_OUTDIR) the CLI passes context itself; run directly,
    # read cdk.json the way the CLI would.
    context = None if "CDK_OUTDIR" in os.environ else project_context()
    app, _ = build_app(context)
    app.synth()


if __name__ == "__main__":
    main()
