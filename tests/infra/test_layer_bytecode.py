"""The layer is compiled for the functions' runtime (CPython 3.12), and synth refuses any other
bytecode: Lambda's /opt is read-only, so a module without usable bytecode is compiled again on
every cold start (bench/lambda_cold_start.py measures what that costs)."""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from infra import workflow
from infra.packaging import (
    COLD_IMPORT_BUDGET_S,
    LAYER_DIR,
    MEASURED_COLD_IMPORT_CPU_S,
    RUNTIME_CACHE_TAG,
    LambdaPackage,
    PackagingError,
    check_bytecode,
    cold_import_s,
    compile_layer,
    find_layer_python,
    memory_for,
    stage_code,
)
from infra.packaging import (
    ROOT as REPO,
)


def _site(root: Path) -> Path:
    site = root / "layer" / "python"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    return site


def test_the_layer_is_compiled_by_a_cpython_312_into_unchecked_hash_bytecode(
    tmp_path: Path, python312: str
) -> None:
    site = _site(tmp_path)
    assert compile_layer(site, python312) == 1
    (pyc,) = site.rglob("*.pyc")
    assert pyc.name == f"__init__.{RUNTIME_CACHE_TAG}.pyc"
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source never checked: valid whatever mtimes the zip leaves
    # and CPython 3.12 uses it: with the source gone, the module still imports from bytecode
    (site / "pkg" / "__init__.py").write_text("raise SystemExit('source was compiled instead')\n")
    out = subprocess.run(
        [python312, "-c", "import pkg; print(pkg.VALUE)"],
        cwd=site,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout.strip() == "42", out.stderr


def test_synth_refuses_another_pythons_bytecode(tmp_path: Path) -> None:
    # Given a layer compiled by the wrong Python (this test's, not 3.12)
    site = _site(tmp_path)
    py_compile.compile(str(site / "pkg" / "__init__.py"), doraise=True)
    assert sys.implementation.cache_tag != RUNTIME_CACHE_TAG
    package = LambdaPackage(code_dir=stage_code(tmp_path / "code"), layer_dir=tmp_path / "layer")
    # Then the package check (synth) names the file and the fix
    with pytest.raises(
        PackagingError,
        match=rf"not {RUNTIME_CACHE_TAG}.*pkg/__pycache__/__init__\.{sys.implementation.cache_tag}\.pyc.*LAYER_PYTHON",
    ):
        package.check()


def test_synth_refuses_a_pyc_named_for_312_with_other_bytecode(tmp_path: Path) -> None:
    site = _site(tmp_path)
    compiled = Path(py_compile.compile(str(site / "pkg" / "__init__.py"), doraise=True))
    compiled.rename(compiled.with_name(f"__init__.{RUNTIME_CACHE_TAG}.pyc"))
    with pytest.raises(PackagingError, match="not cpython-312"):
        check_bytecode(tmp_path / "layer")


def test_a_layer_without_bytecode_and_one_with_the_right_bytecode_pass(
    tmp_path: Path, python312: str
) -> None:
    site = _site(tmp_path)
    assert check_bytecode(site) == 0
    compile_layer(site, python312)
    assert check_bytecode(site) == 1


def test_layer_python_must_be_a_cpython_312(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"LAYER_PYTHON=.* is not a CPython 3\.12"):
        find_layer_python({"LAYER_PYTHON": sys.executable})
    with pytest.raises(PackagingError, match=r"LAYER_PYTHON=/nowhere/python3\.12"):
        find_layer_python({"LAYER_PYTHON": "/nowhere/python3.12"})


def test_without_any_312_synth_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.12 on PATH
    with pytest.raises(PackagingError, match=r"no CPython 3\.12 found.*LAYER_PYTHON"):
        find_layer_python({"PYENV_ROOT": str(tmp_path)})


def test_layer_python_is_found_and_is_312(python312: str) -> None:
    out = subprocess.run(
        [python312, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "(3, 12)"


# --- memory from the measured cold start ----------------------------------------------------------
def test_memory_is_the_smallest_step_whose_cold_import_fits_the_budget() -> None:
    # 0.44 CPU s: 1.52 s at 512 MB (a third of a vCPU), 0.76 s at 1024 MB
    assert memory_for(MEASURED_COLD_IMPORT_CPU_S) == 1024 == workflow.MEMORY_MB
    assert cold_import_s(MEASURED_COLD_IMPORT_CPU_S, 512) > COLD_IMPORT_BUDGET_S
    # positive control: the uncompiled layer (1.00 CPU s) would need a whole vCPU
    assert memory_for(1.0) == 1769
    with pytest.raises(PackagingError, match="never fits"):
        memory_for(5.0)


@pytest.mark.slow
def test_the_recorded_measurement_still_holds_for_the_built_layer(python312: str) -> None:
    # Given the layer `make synth` built (compiled), when the heaviest handler is imported cold
    if not (LAYER_DIR / "python").is_dir() or check_bytecode(LAYER_DIR / "python") == 0:
        pytest.skip("no compiled layer in build/: run `make synth` to measure it")
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "lambda_cold_start.py"), "--runs", "3", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    # Then compiling pays, and the memory chosen from the recorded number fits this measurement too
    assert report["compiled"]["cpu_s"] < report["uncompiled"]["cpu_s"]
    assert report["compiled"][f"{workflow.MEMORY_MB}MB_s"] <= COLD_IMPORT_BUDGET_S * 1.5  # shared-CPU noise
