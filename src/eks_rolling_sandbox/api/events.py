"""Kubernetes Events (core/v1), deduplicated by object, reason and message like the event recorder.

Upstream: client-go tools/record/events_cache.go (EventCorrelator's aggregation by key).
"""

from __future__ import annotations

import contextlib

from .errors import ApiError
from .store import Obj, Store, random_suffix, timestamp


def record_event(
    store: Store,
    involved: Obj,
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    component: str = "sandbox",
) -> None:
    md = involved["metadata"]
    ns = md.get("namespace") or "default"
    for ev in store.by_index("events", "involved", md.get("uid", "")):
        if ev["reason"] == reason and ev["message"] == message:

            def bump(cur: Obj) -> Obj:
                cur["count"] = cur.get("count", 1) + 1
                cur["lastTimestamp"] = timestamp()
                return cur

            with contextlib.suppress(ApiError):
                store.mutate("events", ev["metadata"]["namespace"], ev["metadata"]["name"], bump)
            return
    now = timestamp()
    with contextlib.suppress(ApiError):
        store.create(
            "events",
            {
                "metadata": {"name": f"{md['name']}.{random_suffix(10)}", "namespace": ns},
                "involvedObject": {
                    "kind": involved.get("kind"),
                    "namespace": md.get("namespace"),
                    "name": md["name"],
                    "uid": md.get("uid"),
                    "apiVersion": involved.get("apiVersion"),
                    "resourceVersion": md.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": component},
                "reportingComponent": component,
                "reportingInstance": "",
            },
        )
