"""Label indexes for what matches pods against selectors on every pod event or request (the
endpoints and disruption controllers, the eviction subresource): the pods a selector picks, and
the Services / PDBs whose selector may pick a pod, read from index buckets instead of listing the
whole namespace. Listing made each event cost O(pods + selectors in the namespace): quadratic in
a 15,000-pod sandbox.

An index bucket holds candidates only; every caller still applies the full selector.

Upstream: client-go's cache.Indexer (informer indexes by namespace and custom keys), which the
endpointslice and disruption controllers' listers use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .selectors import label_selector_matches
from .store import Obj, Store

LABELS = "labels"  # pods, by "<namespace>\0<key>=<value>" for each label
SELECTOR = "selector"  # services and PDBs, by each matchLabels pair of their selector
_ANY = "\0*"  # a selector with no matchLabels pair (expressions only, or {}): always a candidate


def _pair(ns: str, key: str, value: str) -> str:
    return f"{ns}\0{key}={value}"


def _pod_keys(pod: Obj) -> list[str]:
    ns = pod["metadata"].get("namespace", "")
    return [_pair(ns, k, v) for k, v in (pod["metadata"].get("labels") or {}).items()]


def _service_keys(svc: Obj) -> list[str]:
    ns = svc["metadata"].get("namespace", "")
    return [_pair(ns, k, v) for k, v in (svc["spec"].get("selector") or {}).items()]


def _pdb_keys(pdb: Obj) -> list[str]:
    ns = pdb["metadata"].get("namespace", "")
    selector = pdb["spec"].get("selector")
    if selector is None:
        return []  # matches nothing
    pairs = (selector.get("matchLabels") or {}).items()
    return [_pair(ns, k, v) for k, v in pairs] or [ns + _ANY]


def install(store: Store) -> None:
    store.add_index("pods", LABELS, _pod_keys)
    store.add_index("services", SELECTOR, _service_keys)
    store.add_index("poddisruptionbudgets", SELECTOR, _pdb_keys)


def _by_name(objs: Iterable[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: o["metadata"]["name"])


def pods_selected(store: Store, ns: str, selector: Mapping[str, Any] | None) -> list[Obj]:
    """The pods of `ns` an object-form selector matches, sorted by name (as a LIST returns them)."""
    if selector is None:
        return []
    pairs = list((selector.get("matchLabels") or {}).items())
    if pairs and store.has_index("pods", LABELS):
        candidates = store.by_index("pods", LABELS, _pair(ns, *pairs[0]))
    else:
        candidates = store.list("pods", ns)[0]
    return _by_name(
        p for p in candidates if label_selector_matches(selector, p["metadata"].get("labels") or {})
    )


def selecting(store: Store, plural: str, ns: str, labels: Iterable[Mapping[str, str]]) -> list[Obj]:
    """The Services or PDBs of `ns` whose selector may match any of these label sets (candidates:
    the caller applies the selector)."""
    if not store.has_index(plural, SELECTOR):
        return store.list(plural, ns)[0]
    keys = {ns + _ANY} | {_pair(ns, k, v) for lb in labels for k, v in lb.items()}
    found: dict[str, Obj] = {}
    for key in keys:
        for obj in store.by_index(plural, SELECTOR, key):
            found[obj["metadata"]["name"]] = obj
    return _by_name(found.values())
