"""Lambda packaging without Docker: one code asset and one dependency layer, both plain folders.

- Code: `build/lambda-code/` holds only `eks_rolling/` (from `src/`) and `lambdas/`; every
  function uses it, with its own handler string (`lambdas.<step>.handler`).
- Layer: `build/lambda-layer/python/`, made by pip for Lambda's platform (manylinux x86_64,
  CPython 3.12, binary wheels only) from the pinned `requirements-lambda.txt`, then pruned.
  Rebuilt only when the requirements change.

Lambda refuses a function whose code plus layers exceed 250 MB unzipped, at deploy time; the
size is checked here so that synth fails first, with the numbers.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterable
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
LAYER_PRUNE: Final = ("kubernetes/aio", "bin")

LAMBDA_UNZIPPED_LIMIT: Final = 250 * 1024 * 1024  # function code + all layers, unzipped


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
    digest.update(" ".join(PIP_PLATFORM + LAYER_PRUNE).encode())
    return digest.hexdigest()


def _prune(site: Path) -> None:
    for rel in LAYER_PRUNE:
        target = site / rel
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
) -> Path:
    """pip-install the pinned requirements for Lambda's platform into `dest/python`.

    A fingerprint of the requirements next to `dest` skips the rebuild when nothing changed.
    """
    stamp = dest.with_name(dest.name + ".sha256")
    fingerprint = _fingerprint(requirements)
    if not force and (dest / "python").is_dir() and stamp.is_file() and stamp.read_text() == fingerprint:
        log.info("layer %s is up to date", dest)
        return dest
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
