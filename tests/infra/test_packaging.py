"""Lambda packaging without Docker: the code asset's contents, the layer build, the size limit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra import packaging
from infra.packaging import LambdaPackage, PackagingError, build_layer, check_size, stage_code


def test_code_asset_is_the_runtime_packages_only(tmp_path: Path) -> None:
    staged = stage_code(tmp_path / "code")
    assert sorted(p.name for p in staged.iterdir()) == ["eks_rolling", "lambdas"]
    names = [p.relative_to(staged).as_posix() for p in staged.rglob("*")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("eks_rolling_sandbox", "tests", "infra"))]
    assert "eks_rolling/steps.py" in names and "lambdas/_runtime.py" in names


def test_restaging_drops_stale_files(tmp_path: Path) -> None:
    staged = stage_code(tmp_path / "code")
    (staged / "lambdas" / "removed_step.py").write_text("")
    assert not (stage_code(tmp_path / "code") / "lambdas" / "removed_step.py").exists()


def test_requirements_pin_every_package_exactly() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in packaging.REQUIREMENTS.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert lines and all("==" in line for line in lines), lines
    pins = {line.split("==")[0].split("[")[0].lower(): line.split("==")[1] for line in lines}
    assert pins["kubernetes"] == "37.0.1"
    assert pins["redis"] == "8.1.0"
    assert pins["aws-lambda-powertools"] == "3.37.0"
    assert int(pins["python-dateutil"].split(".")[0]) < 3  # the runtime's botocore needs <3
    assert {"pydantic", "pydantic-settings"} <= set(pins)


def test_too_large_a_package_fails_with_the_numbers(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "x.py").write_bytes(b"x" * 4096)
    (tmp_path / "layer" / "python").mkdir(parents=True)
    (tmp_path / "layer" / "python" / "big.so").write_bytes(b"\0" * 8192)
    with pytest.raises(PackagingError, match=r"unzipped \(code 0\.0 MB \+ layer 0\.0 MB\), over Lambda's"):
        check_size(tmp_path / "code", tmp_path / "layer", limit=10_000)
    assert check_size(tmp_path / "code", tmp_path / "layer") == 4096 + 8192


def test_missing_layer_says_how_to_build_it(tmp_path: Path) -> None:
    package = LambdaPackage(code_dir=stage_code(tmp_path / "code"), layer_dir=tmp_path / "nothing")
    with pytest.raises(PackagingError, match="make synth"):
        package.check()


def _fake_pip(tmp_path: Path, *, fail: bool = False) -> str:
    """A 'python' whose `-m pip install ... --target DIR` drops a package and kubernetes/aio."""
    script = tmp_path / "fake-python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "open(pathlib.Path(__file__).with_suffix('.log'), 'a').write(' '.join(args) + '\\n')\n"
        + ("sys.exit('ERROR: No matching distribution found for nothing==0')\n" if fail else "")
        + "target = pathlib.Path(args[args.index('--target') + 1])\n"
        "for rel in ('kubernetes/__init__.py', 'kubernetes/aio/big.py', 'redis/__pycache__/x.pyc', 'bin/tool'):\n"
        "    (target / rel).parent.mkdir(parents=True, exist_ok=True)\n"
        "    (target / rel).write_text('x')\n"
    )
    script.chmod(0o755)
    return str(script)


def test_layer_is_built_for_lambda_and_pruned(tmp_path: Path, python312: str) -> None:
    python = _fake_pip(tmp_path)
    layer = build_layer(tmp_path / "layer", packaging.REQUIREMENTS, python=python, layer_python=python312)
    args = (tmp_path / "fake-python.log").read_text()
    for flag in (
        "--platform manylinux2014_x86_64",
        "--implementation cp",
        "--python-version 3.12",
        "--only-binary=:all:",
        "--no-compile",
    ):
        assert flag in args
    site = layer / "python"
    assert (site / "kubernetes" / "__init__.py").is_file()
    assert not (site / "kubernetes" / "aio").exists()
    assert not (site / "bin").exists()
    # pip's own bytecode is pruned; what is left is the compile step's (tests/infra/test_layer_bytecode.py)
    assert not (site / "redis" / "__pycache__" / "x.pyc").exists()
    # unchanged requirements: no second pip run
    build_layer(tmp_path / "layer", packaging.REQUIREMENTS, python=python)
    assert args == (tmp_path / "fake-python.log").read_text()


def test_pip_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="No matching distribution"):
        build_layer(
            tmp_path / "layer",
            packaging.REQUIREMENTS,
            python=_fake_pip(tmp_path, fail=True),
            layer_python="x",
        )
    assert not (tmp_path / "layer").exists()
