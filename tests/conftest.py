"""Shared fixtures. Tests that need real services (redis-server, kubectl) skip cleanly without them."""

from __future__ import annotations

import logging
import os

import pytest

# Handlers log through Powertools; keep test output readable.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
logging.getLogger("botocore").setLevel(logging.WARNING)


# Tests that run real redis-server processes bind loopback pod IPs (127.k.x.y) and time real
# failovers. Under pytest-xdist each group runs in one worker, and the two groups use disjoint
# node indices (E2E_FIRST_NODE_INDEX below; the others start at 1, 100 or 150), so the two
# workers' sandboxes never share an address.
REDIS_GROUPS = {
    "tests/sandbox_redis/": "redis",
    "tests/integration/redis": "redis",
    "tests/integration/sandbox_env/test_sandbox_cli.py": "redis",
    "tests/e2e/test_redis_": "redis-e2e",
}
E2E_FIRST_NODE_INDEX = "40"


# tryfirst: xdist's own hook turns the marker into the node id's "@group" suffix; running after
# it (as a conftest loaded at start-up does) the marker would be ignored.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    for item in items:
        path = str(item.path.relative_to(config.rootpath))
        group = next((g for prefix, g in REDIS_GROUPS.items() if path.startswith(prefix)), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
