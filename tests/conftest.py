"""Shared fixtures. Tests that need real services (redis-server, kubectl) skip cleanly without them."""

from __future__ import annotations

import logging
import os

# Handlers log through Powertools; keep test output readable.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
logging.getLogger("botocore").setLevel(logging.WARNING)
