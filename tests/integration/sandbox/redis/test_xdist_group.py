"""The Redis tests bind loopback pod IPs and time real failovers: under `make test` they must all
run in one pytest-xdist worker (tests/conftest.py). pytest 9 with pytest-xdist 3.8 silently
dropped that grouping once; this fails if it ever does again."""

from __future__ import annotations

import pytest


def test_redis_tests_run_in_the_redis_xdist_group(request: pytest.FixtureRequest) -> None:
    if not request.config.getvalue("loadgroup"):
        pytest.skip("not running under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@redis"), request.node.nodeid
