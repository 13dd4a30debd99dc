"""`make synth`: build the Lambda package and synthesize the stack into cdk.out/, without the cdk
CLI, Docker or AWS credentials (the stack is environment-agnostic and looks nothing up).

    python -m infra.synth [-c key=value ...] [--output cdk.out]

Context comes from cdk.json, then cdk.context.json, then `-c` (as with the cdk CLI). The cloud
assembly can be deployed as is: `cdk deploy --app cdk.out`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .node import use_bundled_node


def _context_overrides(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"-c expects key=value, got {pair!r}")
        out[key] = value
    return out


def _summary(outdir: Path, stack_name: str) -> str:
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    counts: dict[str, int] = {}
    for resource in template["Resources"].values():
        counts[resource["Type"]] = counts.get(resource["Type"], 0) + 1
    parts = ", ".join(f"{n} {t.split('::')[-1]}" for t, n in sorted(counts.items()))
    return f"{len(template['Resources'])} resources ({parts})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", "-o", default="cdk.out", help="cloud assembly directory")
    args = parser.parse_args(argv)

    use_bundled_node()  # before aws_cdk is imported
    from .app import build_app, project_context
    from .config import ConfigError, load_config
    from .packaging import PackagingError, prepare
    from .stack import StackError
    from .steps import StepRegistryError
    from .workflow import DefinitionError

    outdir = Path(args.output).resolve()
    try:
        context = project_context(overrides=_context_overrides(args.context))
        load_config(context)  # bad context fails here, before the (slow) layer build
        print("eks-rolling: staging Lambda code and building the dependency layer ...", flush=True)
        package = prepare()
        size = package.check()
        print(f"eks-rolling: Lambda package {size / 1024 / 1024:.1f} MB unzipped (limit 250 MB)", flush=True)
        app, stack = build_app(context, package=package, outdir=str(outdir))
    except (ConfigError, PackagingError, DefinitionError, StackError, StepRegistryError) as exc:
        print(f"eks-rolling: synth failed: {exc}", file=sys.stderr)
        return 1
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag / CloudFormation validation findings, reported above
        print(f"eks-rolling: synth failed validation: {exc}", file=sys.stderr)
        return 1
    print(
        f"eks-rolling: wrote {outdir}/{stack.artifact_id}.template.json: {_summary(outdir, stack.artifact_id)}"
    )
    print("eks-rolling: cdk-nag AwsSolutions: no unacknowledged findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
