"""The store's bounded watch history, without a server: a watch from a resourceVersion that has
scrolled out of the history is 410 Expired, one still in it resumes."""

from __future__ import annotations

import pytest

from eks_rolling_sandbox.api.errors import ApiError
from eks_rolling_sandbox.api.store import Store


def test_store_watch_expired_history() -> None:
    store = Store(history=3)
    store.create("configmaps", {"metadata": {"name": "a", "namespace": "default"}})
    first = store.resource_version
    for i in range(4):
        store.mutate("configmaps", "default", "a", lambda o, i=i: o.update(data={"v": str(i)}))
    with pytest.raises(ApiError) as exc:
        store.watch("configmaps", "default", None, None, first - 1)
    assert exc.value.code == 410 and exc.value.reason == "Expired"
    w = store.watch("configmaps", "default", None, None, store.resource_version - 1)
    assert w.queue.get_nowait().type == "MODIFIED"  # still in the history
    w.close()
