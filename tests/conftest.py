"""Shared fixtures. Tests that need real services (redis-server, kubectl) skip cleanly without them."""

from __future__ import annotations

import logging
import os

import pytest

# Handlers log through Powertools; keep test output readable.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
logging.getLogger("botocore").setLevel(logging.WARNING)

pytest_plugins = ("tests.factories.fault_matrix",)  # `make faults`: the fault matrix's marker and report


# Tests that run real redis-server processes bind loopback pod IPs (127.k.x.y) and time real
# failovers. Under pytest-xdist each group runs in one worker, and the two groups use disjoint
# node indices (E2E_FIRST_NODE_INDEX below; the others start at 1, 100 or 150), so the two
# workers' sandboxes never share an address.
REDIS_GROUPS = {
    "tests/integration/redis/": "redis",
    "tests/integration/sandbox/redis/": "redis",
    "tests/integration/sandbox/traffic/": "redis",
    "tests/integration/sandbox/test_cli": "redis",
    "tests/integration/services/redis/": "redis",
    "tests/e2e/test_redis_": "redis-e2e",
}
E2E_FIRST_NODE_INDEX = "40"


# Tests sit in tests/<kind>/<package path>/test_<module>.py; the kind folder sets the marker, so
# `-m unit` and `make unit` select the same tests, and a test outside a kind folder is an error.
KINDS = ("unit", "integration", "e2e", "contract", "infra")


def kind_of(path: str) -> str:
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tests" or parts[1] not in KINDS:
        raise pytest.UsageError(f"{path}: a test belongs under tests/<kind>/, kind one of {', '.join(KINDS)}")
    return parts[1]


# tryfirst: xdist's own hook turns the marker into the node id's "@group" suffix; running after
# it (as a conftest loaded at start-up does) the marker would be ignored.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix()
        item.add_marker(getattr(pytest.mark, kind_of(path)))
        group = next((g for prefix, g in REDIS_GROUPS.items() if path.startswith(prefix)), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
