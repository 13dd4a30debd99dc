"""Where a roll's scope and sequencing come from: start input over ASG tag over setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eks_rolling.errors import InvalidInputError
from eks_rolling.labels import TAG_AZ_SEQUENTIAL, TAG_EXCLUDE_SELECTOR, TAG_INSTANCE_IDS, TAG_NODE_SELECTOR
from eks_rolling.models import RollScope
from eks_rolling.services.drain import _next_wait_s
from eks_rolling.services.snapshot import policy
from eks_rolling.settings import Settings


def test_tags_win_over_settings_and_the_start_input_over_both() -> None:
    s = Settings(node_selector="role=worker", instance_ids=("i-s",), az_sequential=False)
    tags = {TAG_NODE_SELECTOR: "role=web", TAG_INSTANCE_IDS: "i-1, i-2", TAG_AZ_SEQUENTIAL: "true"}
    p = policy(s, tags)
    assert p.scope.node_selector == {
        "matchExpressions": [{"key": "role", "operator": "In", "values": ["web"]}]
    }
    assert p.scope.instance_ids == {"i-1", "i-2"} and p.az_sequential
    assert p.scope.source["node_selector"] == f"tag {TAG_NODE_SELECTOR}"
    p = policy(s, tags, RollScope(instance_ids=["i-9"]))
    assert p.scope.instance_ids == {"i-9"} and p.scope.source["instance_ids"] == "start input"
    assert p.scope.source["node_selector"] == f"tag {TAG_NODE_SELECTOR}"
    p = policy(s, {})
    assert p.scope.instance_ids == {"i-s"} and p.scope.exclude_selector is None and not p.az_sequential


def test_a_tag_selector_that_does_not_parse_is_invalid_input_naming_the_tag() -> None:
    with pytest.raises(InvalidInputError, match=rf"tag {TAG_EXCLUDE_SELECTOR}: .*not a valid label key"):
        policy(Settings(), {TAG_EXCLUDE_SELECTOR: "-x"})


def test_a_node_held_by_do_not_disrupt_pods_waits_longer_each_round_never_past_the_deadline() -> None:
    s = Settings(poll_interval_s=10, do_not_disrupt_poll_cap_s=300)
    now = datetime(2026, 12, 7, tzinfo=UTC)
    far = [now + timedelta(hours=1)]
    assert [_next_wait_s(0, k, far, now, s) for k in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    # 25 s before the deadline the wait ends just after it (one more check acts on it)
    assert _next_wait_s(0, 6, [now + timedelta(seconds=25)], now, s) == 26
    # Not held (other pods still moving): the eviction back-off applies
    assert _next_wait_s(0, 0, far, now, s) == 5
