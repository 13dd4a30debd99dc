"""One synthesis per session (with cdk-nag), shared by every infra test.

The Lambda code is staged for real (it is small); the dependency layer is a stub folder, so no
pip run and no 60 MB asset copy. Importing `infra` first points jsii at the bundled Node 24
(JSII_NODE, see infra/node.py) and silences Node version banners, before aws_cdk starts Node.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from infra.node import use_bundled_node
from tests.infra.cdk_support import VARIANT_CONTEXT, Synth, synthesize

use_bundled_node()


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack as configured by cdk.json (with cdk-nag applied)."""
    return synthesize(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The optional features on: existing topic, Redis secrets, reserved concurrency, custom tag."""
    return synthesize(tmp_path_factory.mktemp("variant"), VARIANT_CONTEXT)


@pytest.fixture(scope="session")
def template(synth: Synth) -> dict[str, Any]:
    return synth.template


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No EKS_ROLLING_* variable of the developer's shell leaks into a Settings() under test."""
    for key in list(os.environ):
        if key.startswith("EKS_ROLLING_"):
            monkeypatch.delenv(key)
    yield monkeypatch


@pytest.fixture(scope="session")
def python312() -> str:
    """A CPython 3.12 (the functions' runtime), as `make synth` finds it to compile the layer."""
    from infra.packaging import PackagingError, find_layer_python

    try:
        return find_layer_python()
    except PackagingError as exc:
        pytest.skip(f"no CPython 3.12 on this machine: {exc}")
