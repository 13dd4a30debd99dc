"""Shared fixtures. Tests that need real services (redis-server, kubectl) skip cleanly without them."""

from __future__ import annotations

import logging
import os

import pytest

# Handlers log through Powertools; keep test output readable.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
logging.getLogger("botocore").setLevel(logging.WARNING)


# Tests that run real redis-server processes bind loopback pod IPs (127.k.x.y) that another
# sandbox in a parallel worker could also allocate: under pytest-xdist they share one worker.
REDIS_PATHS = (
    "tests/sandbox_redis/",
    "tests/integration/redis",
    "tests/e2e/test_redis_",
    "tests/integration/sandbox_env/test_sandbox_cli.py",
)


# tryfirst: xdist's own hook turns the marker into the node id's "@redis" suffix; running after
# it (as a conftest loaded at start-up does) the marker would be ignored and the Redis tests
# spread over both workers.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    for item in items:
        path = str(item.path.relative_to(config.rootpath))
        if path.startswith(REDIS_PATHS):
            item.add_marker(pytest.mark.xdist_group("redis"))
