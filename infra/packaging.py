"""Lambda packaging without Docker: one code asset and one dependency layer, both plain folders.

- Code: `build/lambda-code/` holds only `eks_rolling/` (from `src/`) and `lambdas/`; every
  function uses it, with its own handler string (`lambdas.<step>.handler`).
- Layer: `build/lambda-layer/python/`, made by pip for Lambda's platform (manylinux x86_64,
  CPython 3.12, binary wheels only) from the pinned `requirements-lambda.txt`, then pruned and
  compiled to bytecode by a CPython 3.12 (`LAYER_PYTHON`). Rebuilt only when the requirements change.

Why compile: `/opt` is read-only on Lambda, so an uncompiled layer is compiled again on every cold
start (the kubernetes client alone is ~700 modules) at the fraction of a vCPU the memory size buys
(bench/lambda_cold_start.py). Bytecode is version-specific: a .pyc of another Python is ignored,
so synth refuses any .pyc that is not CPython 3.12's (`check_bytecode`). The .pyc files are
`unchecked-hash`: valid whatever mtimes the asset zip and Lambda's unzip leave on the sources.

Lambda refuses a function whose code plus layers exceed 250 MB unzipped, at deploy time; the
size is checked here so that synth fails first, with the numbers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

ROOT: Final = Path(__file__).resolve().parents[1]
BUILD: Final = ROOT / "build"
CODE_DIR: Final = BUILD / "lambda-code"
LAYER_DIR: Final = BUILD / "lambda-layer"
REQUIREMENTS: Final = ROOT / "requirements-lambda.txt"

# What the code asset carries: (source, name in the asset).
CODE_SOURCES: Final = ((ROOT / "src" / "eks_rolling", "eks_rolling"), (ROOT / "lambdas", "lambdas"))
CODE_IGNORE: Final = ("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")

# The Lambda platform the layer is built for; must match the functions' runtime/architecture.
PIP_PLATFORM: Final = (
    "--platform", "manylinux2014_x86_64",
    "--implementation", "cp",
    "--python-version", "3.12",
    "--only-binary=:all:",
)  # fmt: skip
# Pruned after install: kubernetes' asyncio client (~70 MB; nothing imports it), bytecode the
# build interpreter may have compiled (wrong version for the runtime), console scripts.
# botocore: aws-xray-sdk (Powertools Tracer) depends on it, and the runtime provides it; a copy in
# the layer, first on sys.path, would shadow the runtime's and mismatch its boto3.
LAYER_PRUNE: Final = ("kubernetes/aio", "bin", "botocore", "botocore-*.dist-info")

LAMBDA_UNZIPPED_LIMIT: Final = 250 * 1024 * 1024  # function code + all layers, unzipped

# The functions' runtime (infra/workflow.py RUNTIME = python3.12): its bytecode tag and the magic
# number (importlib.util.MAGIC_NUMBER) every CPython 3.12 writes at the start of a .pyc.
RUNTIME_CACHE_TAG: Final = "cpython-312"
RUNTIME_MAGIC: Final = (3531).to_bytes(2, "little") + b"\r\n"
COMPILE: Final = ("-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash")

# Lambda memory from a measured cold start. Below 1,769 MB a function gets MB/1769 of a vCPU
# ("at 1,769 MB, a function has the equivalent of one vCPU"), and importing is single-threaded.
VCPU_MB: Final = 1769
MEMORY_STEPS_MB: Final = (512, 1024, 1536, 1769, 2048)
# bench/lambda_cold_start.py, 2026-12-06: CPU seconds to import the heaviest handler
# (lambdas.plan_roll: kubernetes client, powertools, pydantic; 824 modules) from the compiled layer
# in fresh CPython 3.12 processes, median of 5. Uncompiled it was 1.00 s.
MEASURED_COLD_IMPORT_CPU_S: Final = 0.44
# Imports are the part of a cold start that grows with the dependencies; keep them under a second.
COLD_IMPORT_BUDGET_S: Final = 1.0


def cold_import_s(cpu_s: float, memory_mb: int) -> float:
    """Seconds an import of `cpu_s` CPU seconds takes at `memory_mb` of Lambda memory."""
    return cpu_s * max(1.0, VCPU_MB / memory_mb)


def memory_for(cpu_s: float, budget_s: float = COLD_IMPORT_BUDGET_S) -> int:
    """The smallest memory step whose cold import fits the budget."""
    for memory_mb in MEMORY_STEPS_MB:
        if cold_import_s(cpu_s, memory_mb) <= budget_s:
            return memory_mb
    raise PackagingError(f"a {cpu_s:.2f} CPU-second import never fits {budget_s} s: trim the layer")


class PackagingError(RuntimeError):
    """The Lambda code or layer could not be built, or is too large to deploy."""


@dataclass(frozen=True)
class LambdaPackage:
    """Folders to turn into the code asset and the layer asset."""

    code_dir: Path
    layer_dir: Path

    def check(self) -> int:
        """Total unzipped bytes; PackagingError when missing or above Lambda's limit."""
        if not (self.code_dir / "lambdas").is_dir() or not (self.code_dir / "eks_rolling").is_dir():
            raise PackagingError(f"{self.code_dir} is not a staged code folder: run `make synth`")
        if not (self.layer_dir / "python").is_dir():
            raise PackagingError(f"{self.layer_dir}/python is missing: run `make synth` to build the layer")
        check_bytecode(self.code_dir)
        check_bytecode(self.layer_dir)
        return check_size(self.code_dir, self.layer_dir)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def check_size(code_dir: Path, layer_dir: Path, limit: int = LAMBDA_UNZIPPED_LIMIT) -> int:
    code, layer = dir_size(code_dir), dir_size(layer_dir)
    total = code + layer
    if total > limit:
        raise PackagingError(
            f"Lambda package is {_mb(total)} unzipped (code {_mb(code)} + layer {_mb(layer)}), over "
            f"Lambda's {_mb(limit)} limit: trim requirements-lambda.txt or extend LAYER_PRUNE"
        )
    return total


def check_bytecode(root: Path) -> int:
    """The number of .pyc under `root`; PackagingError if any is not CPython 3.12 bytecode in a
    `__pycache__` (another Python's .pyc would be ignored and the module compiled at cold start)."""
    wrong: list[str] = []
    count = 0
    for pyc in sorted(root.rglob("*.pyc")):
        count += 1
        with pyc.open("rb") as f:
            magic = f.read(4)
        if (
            pyc.parent.name != "__pycache__"
            or not pyc.name.endswith(f".{RUNTIME_CACHE_TAG}.pyc")
            or magic != RUNTIME_MAGIC
        ):
            wrong.append(str(pyc.relative_to(root)))
    if wrong:
        raise PackagingError(
            f"{len(wrong)} bytecode file(s) in {root} are not {RUNTIME_CACHE_TAG} (the functions' "
            f"runtime), e.g. {', '.join(wrong[:3])}: rebuild with `make synth` and LAYER_PYTHON set "
            "to a CPython 3.12"
        )
    return count


def cache_tag(python: str) -> str | None:
    """`sys.implementation.cache_tag` of an interpreter, None if it does not run."""
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_layer_python(environ: Mapping[str, str] | None = None) -> str:
    """The CPython 3.12 that compiles the layer: `LAYER_PYTHON`, else `python3.12` on PATH, else a
    pyenv 3.12. Read at call time."""
    env = os.environ if environ is None else environ
    explicit = env.get("LAYER_PYTHON")
    pyenv = sorted(Path(env.get("PYENV_ROOT", Path.home() / ".pyenv")).glob("versions/3.12*/bin/python3.12"))
    candidates = [explicit] if explicit else ["python3.12", *map(str, pyenv)]
    for python in candidates:
        if cache_tag(python) == RUNTIME_CACHE_TAG:
            return python
    if explicit:
        raise PackagingError(
            f"LAYER_PYTHON={explicit} is not a CPython 3.12 (cache tag {cache_tag(explicit)!r}); the "
            "functions run python3.12 and ignore other bytecode"
        )
    raise PackagingError(
        "no CPython 3.12 found to compile the Lambda layer (tried python3.12 and pyenv): install one "
        "(e.g. `pyenv install 3.12`, or your distribution's python3.12) or set LAYER_PYTHON to its path"
    )


def compile_layer(site: Path, python: str) -> int:
    """Compile every module of `site` with `python` (a CPython 3.12); the number of .pyc written."""
    result = subprocess.run([python, *COMPILE, str(site)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # compileall reports files that do not compile (e.g. examples written for another Python)
        # and goes on; they would fail at import on Lambda too, so none of ours may be among them.
        log.warning("compileall: %s", (result.stdout or result.stderr).strip()[-2000:])
    return check_bytecode(site)


def stage_code(dest: Path = CODE_DIR, sources: Iterable[tuple[Path, str]] = CODE_SOURCES) -> Path:
    """(Re)create `dest` with exactly the runtime packages, without bytecode or caches."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for source, name in sources:
        shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns(*CODE_IGNORE))
    return dest


def _fingerprint(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(" ".join(PIP_PLATFORM + LAYER_PRUNE + COMPILE + (RUNTIME_CACHE_TAG,)).encode())
    return digest.hexdigest()


def _prune(site: Path) -> None:
    for rel in LAYER_PRUNE:
        for target in site.glob(rel):
            if target.is_dir():
                shutil.rmtree(target)
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def build_layer(
    dest: Path = LAYER_DIR,
    requirements: Path = REQUIREMENTS,
    *,
    force: bool = False,
    python: str = sys.executable,
    layer_python: str | None = None,
) -> Path:
    """pip-install the pinned requirements for Lambda's platform into `dest/python`, then compile
    them with `layer_python` (default: `find_layer_python()`), a CPython 3.12.

    A fingerprint of the requirements next to `dest` skips the rebuild when nothing changed.
    """
    stamp = dest.with_name(dest.name + ".sha256")
    fingerprint = _fingerprint(requirements)
    if not force and (dest / "python").is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        log.info("layer %s is up to date", dest)
        return dest
    compiler = layer_python or find_layer_python()  # before the (slow) pip run
    staging = dest.with_name(dest.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    cmd = [
        python, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
        *PIP_PLATFORM, "--target", str(staging / "python"), "-r", str(requirements),
    ]  # fmt: skip
    log.info("building the Lambda layer: %s", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackagingError(
            f"pip could not build the Lambda layer from {requirements.name} "
            f"(exit {result.returncode}):\n{result.stderr.strip() or result.stdout.strip()}"
        )
    _prune(staging / "python")
    compiled = compile_layer(staging / "python", compiler)
    log.info("compiled %d modules of the layer with %s", compiled, compiler)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    stamp.write_text(fingerprint)
    return dest


def prepare(*, code_dir: Path = CODE_DIR, layer_dir: Path = LAYER_DIR, build: bool = True) -> LambdaPackage:
    """Stage the code, build the layer if needed, and check the total size."""
    stage_code(code_dir)
    if build:
        build_layer(layer_dir)
    package = LambdaPackage(code_dir=code_dir, layer_dir=layer_dir)
    package.check()
    return package
