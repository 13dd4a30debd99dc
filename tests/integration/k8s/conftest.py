"""The Kubernetes adapter's fixtures: a sandbox API with two Ready nodes in two zones, and the
adapter (`KubeOps`) talking to it over HTTP with the official client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eks_rolling.aws.eks_auth import KubeConnection
from eks_rolling.k8s.ops import KubeOps, api_client
from eks_rolling.settings import Settings
from eks_rolling_sandbox.api.objects import node_object
from eks_rolling_sandbox.sandbox import Sandbox


def _ready(cur: dict[str, Any]) -> dict[str, Any]:
    for c in cur["status"]["conditions"]:
        if c["type"] == "Ready":
            c["status"] = "True"
    return cur


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        for k, az in ((1, "us-east-1a"), (2, "us-east-1b")):
            node = node_object(
                f"node-{k}",
                instance_id=f"i-{k:04d}",
                az=az,
                region="us-east-1",
                instance_type="m5.large",
                index=200 + k,
            )
            sandbox.store.create("nodes", node)
            sandbox.store.mutate("nodes", None, f"node-{k}", _ready)
        sandbox.wait_for(
            lambda: all(not n["spec"].get("taints") for n in sandbox.store.all("nodes")), what="nodes ready"
        )
        yield sandbox


@pytest.fixture
def kube(sb: Sandbox) -> KubeOps:
    settings = Settings()
    return KubeOps(api_client(KubeConnection(sb.url, "unused", None), settings), settings)
