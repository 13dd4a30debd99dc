"""A versioned in-memory object store: the sandbox's etcd.

Committed objects are immutable snapshots (a write stores a new dict), so readers inside the process
can hold them without copying and watch events can point at them. One global resourceVersion
counter is bumped on every write; a bounded history lets watches resume from a resourceVersion, and
answers 410 Expired once it has scrolled past.

Upstream: etcd3 storage and the watch cache of staging/src/k8s.io/apiserver/pkg/storage (cacher),
which is what answers `410 Gone` with reason Expired.
"""

from __future__ import annotations

import builtins
import logging
import pickle
import queue
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from .errors import ApiError, already_exists, conflict, expired, not_found
from .resources import BY_PLURAL, Resource
from .selectors import field_equals, parse_field_selector, parse_label_selector

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
T = TypeVar("T")

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def clone(obj: T) -> T:
    """Deep copy of plain JSON-like data; pickle is several times faster than copy.deepcopy."""
    out: T = pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(dt: datetime | None = None) -> str:
    return (dt or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_NAME_CHARS) for _ in range(n))


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    resource: Resource
    obj: Obj
    old: Obj | None
    rv: int


class Watcher:
    """One watch stream's queue. `None` in the queue means the server closed the stream."""

    def __init__(
        self, store: Store, resource: Resource, namespace: str | None, label: str | None, field: str | None
    ):
        self.store, self.resource, self.namespace = store, resource, namespace
        self._label = parse_label_selector(label)
        self._field = parse_field_selector(resource.plural, field)
        self.queue: queue.Queue[WatchEvent | None] = queue.Queue()

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        md = obj["metadata"]
        if self.namespace and md.get("namespace") != self.namespace:
            return False
        return self._label(md.get("labels") or {}) and self._field(obj)

    def offer(self, ev: WatchEvent) -> None:
        if ev.resource is not self.resource:
            return
        new_ok, old_ok = self.matches(ev.obj), self.matches(ev.old)
        if ev.type == "DELETED":
            if old_ok or new_ok:
                self.queue.put(ev)
        elif new_ok and not old_ok and ev.old is not None:
            self.queue.put(WatchEvent("ADDED", ev.resource, ev.obj, ev.old, ev.rv))
        elif old_ok and not new_ok:
            self.queue.put(WatchEvent("DELETED", ev.resource, ev.obj, ev.old, ev.rv))
        elif new_ok:
            self.queue.put(ev)

    def close(self) -> None:
        self.store._drop_watcher(self)
        self.queue.put(None)


class Index:
    def __init__(self, keyfn: Callable[[Obj], Iterable[str]]):
        self.keyfn = keyfn
        self.map: dict[str, set[Key]] = {}

    def update(self, key: Key, old: Obj | None, new: Obj | None) -> None:
        for v in set(self.keyfn(old)) if old is not None else ():
            bucket = self.map.get(v)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self.map[v]
        for v in set(self.keyfn(new)) if new is not None else ():
            self.map.setdefault(v, set()).add(key)


class Store:
    def __init__(self, history: int = 20000) -> None:
        self.lock = threading.RLock()
        self._data: dict[str, dict[Key, Obj]] = {plural: {} for plural in BY_PLURAL}
        self._rv = 1
        self._history: deque[WatchEvent] = deque(maxlen=history)
        self._watchers: list[Watcher] = []
        self._listeners: list[Callable[[WatchEvent], None]] = []
        self._indexes: dict[str, dict[str, Index]] = {}
        # (plural, field) -> index: a `field=value` selector on that field is served by the index.
        self._field_indexes: dict[tuple[str, str], str] = {}

    # --- reading ------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        """The committed object (treat as read-only) or None."""
        return self._data[plural].get((namespace or "", name))

    def require(self, plural: str, namespace: str | None, name: str) -> Obj:
        obj = self.get(plural, namespace, name)
        if obj is None:
            raise not_found(BY_PLURAL[plural].qualified, name)
        return obj

    def list(
        self,
        plural: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        index: tuple[str, str] | None = None,
    ) -> tuple[builtins.list[Obj], int]:
        """Objects matching the selectors, sorted by (namespace, name), and the list resourceVersion."""
        label = parse_label_selector(label_selector)
        field = parse_field_selector(plural, field_selector)
        if index is None:
            for (res, fld), idx_name in self._field_indexes.items():
                value = field_equals(field_selector, fld) if res == plural else None
                if value:  # an empty value (e.g. unscheduled pods) is not in the index
                    index = (idx_name, value)
                    break
        with self.lock:
            if index is not None:
                keys = self._indexes[plural][index[0]].map.get(index[1], set())
                candidates = [self._data[plural][k] for k in keys if k in self._data[plural]]
            else:
                candidates = list(self._data[plural].values())
            rv = self._rv
        out = [
            o
            for o in candidates
            if (not namespace or o["metadata"].get("namespace") == namespace)
            and label(o["metadata"].get("labels") or {})
            and field(o)
        ]
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out, rv

    def all(self, plural: str) -> builtins.list[Obj]:
        with self.lock:
            return list(self._data[plural].values())

    def by_index(self, plural: str, index: str, value: str) -> builtins.list[Obj]:
        with self.lock:
            keys = self._indexes[plural][index].map.get(value, set())
            return [self._data[plural][k] for k in keys if k in self._data[plural]]

    def has_index(self, plural: str, index: str) -> bool:
        return index in self._indexes.get(plural, {})

    def index_field(self, plural: str, field: str, index: str) -> None:
        """Serve `field=value` selectors on `plural` from the named index (e.g. spec.nodeName)."""
        self._field_indexes[(plural, field)] = index

    def add_index(self, plural: str, name: str, keyfn: Callable[[Obj], Iterable[str]]) -> None:
        with self.lock:
            idx = Index(keyfn)
            for key, obj in self._data[plural].items():
                idx.update(key, None, obj)
            self._indexes.setdefault(plural, {})[name] = idx

    # --- writing -------------------------------------------------------------------------------
    def create(self, plural: str, obj: Obj) -> Obj:
        res = BY_PLURAL[plural]
        obj = clone(obj)
        md = obj.setdefault("metadata", {})
        with self.lock:
            if not md.get("name") and md.get("generateName"):
                for _ in range(10):
                    md["name"] = md["generateName"] + random_suffix()
                    if self.get(plural, md.get("namespace"), md["name"]) is None:
                        break
            if not md.get("name"):
                raise ApiError(
                    422,
                    "Invalid",
                    f"{res.kind}: metadata.name: Required value: name or generateName is required",
                )
            key = ((md.get("namespace") or "") if res.namespaced else "", md["name"])
            if not res.namespaced:
                md.pop("namespace", None)
            if key in self._data[plural]:
                raise already_exists(res.qualified, md["name"])
            md["uid"] = str(uuid.uuid4())
            md.setdefault("creationTimestamp", timestamp())
            if res.generation:
                md["generation"] = 1
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            return self._commit(res, key, None, obj)

    def replace(self, plural: str, obj: Obj, *, expect_rv: str | None = None) -> Obj:
        """PUT semantics: whole object; 409 when `expect_rv` is given and stale."""
        res = BY_PLURAL[plural]
        md = obj["metadata"]
        with self.lock:
            key = ((md.get("namespace") or "") if res.namespaced else "", md["name"])
            cur = self._data[plural].get(key)
            if cur is None:
                raise not_found(res.qualified, md["name"])
            if expect_rv and expect_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res.qualified, md["name"])
            new = clone(obj)
            for f in ("uid", "creationTimestamp"):
                new["metadata"][f] = cur["metadata"][f]
            if "deletionTimestamp" in cur["metadata"]:
                new["metadata"]["deletionTimestamp"] = cur["metadata"]["deletionTimestamp"]
                if "deletionGracePeriodSeconds" in cur["metadata"]:
                    new["metadata"]["deletionGracePeriodSeconds"] = cur["metadata"][
                        "deletionGracePeriodSeconds"
                    ]
            return self._commit(res, key, cur, new)

    def mutate(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        fn: Callable[[Obj], Obj | None],
        *,
        expect_rv: str | None = None,
        expect_uid: str | None = None,
    ) -> Obj:
        """Read-modify-write under the lock. `fn` gets a private copy and returns the new object
        (or mutates and returns None). No write happens when nothing changed."""
        res = BY_PLURAL[plural]
        with self.lock:
            key, cur = self._current(res, namespace, name, expect_uid, expect_rv)
            work = clone(cur)
            out = fn(work)
            new = work if out is None else out
            for f in ("uid", "creationTimestamp", "name"):
                new["metadata"][f] = cur["metadata"][f]
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            if new == cur:
                return cur
            return self._commit(res, key, cur, new)

    def delete(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        *,
        expect_uid: str | None = None,
        expect_rv: str | None = None,
    ) -> Obj:
        res = BY_PLURAL[plural]
        with self.lock:
            key, cur = self._current(res, namespace, name, expect_uid, expect_rv)
            return self._commit(res, key, cur, None)

    def _current(
        self, res: Resource, namespace: str | None, name: str, expect_uid: str | None, expect_rv: str | None
    ) -> tuple[Key, Obj]:
        """The stored object and its key, or the API server's 404 / 409 for a failed precondition
        (uid, resourceVersion). Call under the lock."""
        key = ((namespace or "") if res.namespaced else "", name)
        cur = self._data[res.plural].get(key)
        if cur is None:
            raise not_found(res.qualified, name)
        if expect_uid and expect_uid != cur["metadata"]["uid"]:
            raise conflict(
                res.qualified,
                name,
                f"Precondition failed: UID in precondition: {expect_uid}, UID in object meta: {cur['metadata']['uid']}",
            )
        if expect_rv and expect_rv != cur["metadata"]["resourceVersion"]:
            raise conflict(res.qualified, name)
        return key, cur

    def _commit(self, res: Resource, key: Key, old: Obj | None, new: Obj | None) -> Obj:
        self._rv += 1
        rv = self._rv
        if new is not None:
            new["metadata"]["resourceVersion"] = str(rv)
            self._data[res.plural][key] = new
            ev = WatchEvent("ADDED" if old is None else "MODIFIED", res, new, old, rv)
        else:
            assert old is not None
            # A deleted object's last state carries the deletion's resourceVersion, as upstream.
            new_last = dict(old)
            new_last["metadata"] = {**old["metadata"], "resourceVersion": str(rv)}
            del self._data[res.plural][key]
            ev = WatchEvent("DELETED", res, new_last, old, rv)
        for idx in self._indexes.get(res.plural, {}).values():
            idx.update(key, old, new)
        self._history.append(ev)
        for w in list(self._watchers):
            w.offer(ev)
        for fn in list(self._listeners):
            try:
                fn(ev)
            except Exception:  # a broken listener must not break the API
                log.exception("store listener failed")
        return ev.obj

    # --- watching ------------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[WatchEvent], None]) -> Callable[[], None]:
        """Call `fn` synchronously, under the store lock, after every commit. It must be quick and
        must not write to the store (enqueue work instead)."""
        with self.lock:
            self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def watch(
        self,
        plural: str,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        since_rv: int | None,
    ) -> Watcher:
        """Register a watcher. With `since_rv` None (or 0) the current state is replayed as ADDED
        events first; otherwise every event after `since_rv` is replayed from history."""
        res = BY_PLURAL[plural]
        w = Watcher(self, res, namespace, label_selector, field_selector)
        with self.lock:
            if not since_rv:
                for obj in sorted(
                    self._data[plural].values(), key=lambda o: int(o["metadata"]["resourceVersion"])
                ):
                    if w.matches(obj):
                        w.queue.put(
                            WatchEvent("ADDED", res, obj, None, int(obj["metadata"]["resourceVersion"]))
                        )
            else:
                oldest = self._history[0].rv if self._history else self._rv + 1
                if since_rv < oldest - 1 and since_rv < self._rv:
                    raise expired(f"too old resource version: {since_rv} ({oldest - 1})")
                for ev in self._history:
                    if ev.rv > since_rv:
                        w.offer(ev)
            self._watchers.append(w)
        return w

    def _drop_watcher(self, w: Watcher) -> None:
        with self.lock:
            if w in self._watchers:
                self._watchers.remove(w)

    def close_watchers(self) -> None:
        with self.lock:
            for w in list(self._watchers):
                w.close()
