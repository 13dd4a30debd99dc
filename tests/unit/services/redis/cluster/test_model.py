"""The Cluster move's state is typed: what the phases store validates, a misspelt key or a wrong
type is refused by name before a phase runs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from eks_rolling.services.redis.cluster.model import ClusterMoveState

MASTER_PATH: dict[str, Any] = {
    "uid": "u1",
    "node": "ip-10-0-0-1",
    "ip": "10.1.0.10",
    "kind": "master",
    "node_id": "a" * 40,
    "slots": [[0, 5460]],
    "zone": "us-east-1a",
    "started": "2026-12-06T12:00:00+00:00",
    "temp": "cache-0-eksr-tmp",
    "temp_id": "7" * 40,
    "temp_ip": "10.1.0.20",
    "temp_node": "ip-10-0-9-9",
    "failover_at": 1796558400.5,
    "failover_tries": 1,
    "new_ip": "10.1.0.30",
    "new_node": "ip-10-0-9-8",
    "failover_to_temp_s": 0.412,
    "failback_s": 0.388,
    "total_s": 41.2,
    "announced": [],
    "waiting": None,
    "throttled": 2,
}


def test_what_the_master_path_stores_validates() -> None:
    assert ClusterMoveState.model_validate(MASTER_PATH).failover_tries == 1


def test_a_misspelt_key_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="temp_idd"):
        ClusterMoveState.model_validate({**MASTER_PATH, "temp_idd": "x"})


def test_a_wrong_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="kind"):
        ClusterMoveState.model_validate({**MASTER_PATH, "kind": "primary"})
