"""PlanStore against moto's S3: a stored wave reads back as the node targets it was."""

from __future__ import annotations

import json

import pytest

from eks_rolling.aws.clients import aws_client
from eks_rolling.aws.plans import PlanStore
from eks_rolling.models import NodeTarget
from eks_rolling.planning.waves import wave_key
from eks_rolling.settings import Settings

BUCKET = "eks-rolling-plans"


@pytest.fixture
def store(settings: Settings) -> PlanStore:
    s3 = aws_client("s3", settings)
    s3.create_bucket(Bucket=BUCKET)
    return PlanStore(s3, BUCKET)


def test_a_waves_batches_round_trip_through_s3_as_compact_json(store: PlanStore, settings: Settings) -> None:
    batches = [
        [
            NodeTarget(instance_id=f"i-{b}{k}", node_name=f"n-{b}{k}", az="a", pods=30, redis_rounds=k)
            for k in range(2)
        ]
        for b in range(3)
    ]
    key = wave_key("roll-1-ng-w02")
    store.put_batches(key, batches)
    assert store.batches(key) == batches
    # ... stored as the wave machine's ReadWave parses it (States.StringToJson of the Body)
    body = aws_client("s3", settings).get_object(Bucket=BUCKET, Key="waves/roll-1-ng-w02.json")["Body"].read()
    assert json.loads(body)[2][1]["instance_id"] == "i-21" and b" " not in body
