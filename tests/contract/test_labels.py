"""One spelling for every well-known key and port: src/eks_rolling/labels.py defines each once, and
no other module (runtime, sandbox, tests, benchmarks, infra) repeats its string or number; and the
sandbox's object alias `Obj` is defined once too."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

from eks_rolling import labels

ROOT = Path(__file__).resolve().parents[2]
WELL_KNOWN = {name: v for name, v in vars(labels).items() if name.isupper() and isinstance(v, str | int)}


def _repeats(path: Path) -> list[str]:
    by_value = {v: name for name, v in WELL_KNOWN.items()}
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING and tok.string[:1] in "\"'" and tok.string[1:-1] in by_value:
            out.append(
                f"{path.relative_to(ROOT)}:{tok.start[0]} {tok.string} is labels.{by_value[tok.string[1:-1]]}"
            )
        elif tok.type == tokenize.NUMBER and tok.string.isdigit() and int(tok.string) in by_value:
            out.append(
                f"{path.relative_to(ROOT)}:{tok.start[0]} {tok.string} is labels.{by_value[int(tok.string)]}"
            )
    return out


def test_labels_names_each_key_once() -> None:
    values = list(WELL_KNOWN.values())
    assert len(values) == len(set(values)), "two names for one key"
    assert labels.REDIS_GROUP.startswith(labels.REDIS_PREFIX)
    assert labels.REDIS_CLUSTER_BUS_PORT == labels.REDIS_PORT + 10000


def test_no_module_repeats_a_well_known_key_or_port() -> None:
    files = [
        p
        for folder in ("src", "tests", "bench", "infra", "lambdas")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p != ROOT / "src/eks_rolling/labels.py"
    ]
    assert len(files) > 100
    assert [r for p in files for r in _repeats(p)] == []


def test_the_sandbox_defines_its_object_alias_once() -> None:
    # STYLE.md §2: `Obj = dict[str, Any]` lives in api/store.py; every other module imports it.
    defining = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "src/eks_rolling_sandbox").rglob("*.py")
        if any(line.startswith("Obj = ") for line in p.read_text().splitlines())
    )
    assert defining == ["src/eks_rolling_sandbox/api/store.py"]
