"""The test tree's layout (tests/conftest.py): tests by kind, then by package path; the kind folder
sets the marker; builders live in tests/factories only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import KINDS, REDIS_GROUPS, kind_of

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", KINDS)
def test_the_kind_folder_is_the_kind(kind: str) -> None:
    assert kind_of(f"tests/{kind}/sandbox/api/test_store.py") == kind


@pytest.mark.parametrize(
    "path", ["tests/sandbox/test_eviction.py", "tests/test_x.py", "tests/slow/test_x.py"]
)
def test_a_test_outside_a_kind_folder_is_a_usage_error(path: str) -> None:
    with pytest.raises(pytest.UsageError, match="tests/<kind>/"):
        kind_of(path)


def test_every_test_file_sits_in_a_kind_folder_and_sets_no_kind_marker_itself() -> None:
    files = sorted(TESTS.rglob("test_*.py"))
    assert len(files) > 40
    for f in files:
        rel = f.relative_to(TESTS.parent).as_posix()
        kind_of(rel)
        marks = re.findall(r"pytest\.mark\.(\w+)", f.read_text())
        assert not set(marks) & set(KINDS), f"{rel} sets a kind marker itself: {marks}"


def test_builders_live_in_the_factories_package_only() -> None:
    helpers = [
        f.relative_to(TESTS).as_posix()
        for f in TESTS.rglob("*.py")
        if not f.name.startswith("test_") and f.name not in ("__init__.py", "conftest.py")
    ]
    outside = [h for h in helpers if not h.startswith(("factories/", "infra/cdk_support.py"))]
    assert outside == []


def test_every_redis_group_prefix_names_existing_tests() -> None:
    root = TESTS.parent
    for prefix in REDIS_GROUPS:
        matches = [f for f in TESTS.rglob("test_*.py") if f.relative_to(root).as_posix().startswith(prefix)]
        assert matches, f"REDIS_GROUPS lists {prefix}, which no test file matches"
