"""Execution names as taint values: the name itself, or a label-safe digest when too long."""

from __future__ import annotations

import pytest

from eks_rolling.services.resolve import taint_value_for


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        ("arn:aws:states:us-east-1:123456789012:execution:eks-rolling:run-1", "run-1"),
        (
            "arn:aws:states:us-east-1:123:execution:sm:2b2f1a44-8d43-4d1c-9b7e-0f3f2f8e3a11",
            "2b2f1a44-8d43-4d1c-9b7e-0f3f2f8e3a11",
        ),
    ],
)
def test_taint_value_is_the_execution_name(execution: str, expected: str) -> None:
    assert taint_value_for(execution) == expected


def test_taint_value_is_label_safe_for_long_names() -> None:
    v = taint_value_for("arn:aws:states:r:1:execution:sm:" + "x" * 80)
    assert v.startswith("run-") and len(v) <= 63
