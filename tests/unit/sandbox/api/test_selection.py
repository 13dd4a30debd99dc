"""The label indexes the endpoints and disruption controllers read: the same answers as listing
the namespace and matching every object (they only pick candidates), for matchLabels selectors,
expression-only and empty PDB selectors, and after labels or selectors change."""

from __future__ import annotations

from eks_rolling_sandbox.api import selection
from eks_rolling_sandbox.api.selectors import label_selector_matches
from eks_rolling_sandbox.api.store import Obj, Store


def _pod(name: str, ns: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": {}, "status": {}}


def _pdb(name: str, ns: str, selector: Obj | None) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector}}


def _store() -> Store:
    store = Store()
    selection.install(store)
    for i in range(6):
        store.create("pods", _pod(f"web-{i}", "shop", app="web", tier="front" if i % 2 else "back"))
    store.create("pods", _pod("web-0", "other", app="web"))
    store.create("pods", _pod("db-0", "shop", app="db"))
    return store


def _names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_pods_selected_matches_a_full_scan() -> None:
    store = _store()
    for selector in (
        {"matchLabels": {"app": "web"}},
        {"matchLabels": {"app": "web", "tier": "front"}},
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}],
        },
        {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        {},
        None,
    ):
        scan = [
            p
            for p in store.list("pods", "shop")[0]
            if label_selector_matches(selector, p["metadata"]["labels"])
        ]
        assert _names(selection.pods_selected(store, "shop", selector)) == _names(scan), selector


def test_a_relabelled_pod_moves_between_buckets() -> None:
    store = _store()
    store.mutate("pods", "shop", "web-1", lambda p: p["metadata"]["labels"].update(app="db"))
    assert "web-1" not in _names(selection.pods_selected(store, "shop", {"matchLabels": {"app": "web"}}))
    assert _names(selection.pods_selected(store, "shop", {"matchLabels": {"app": "db"}})) == ["db-0", "web-1"]


def test_selecting_finds_every_pdb_that_may_match_including_expression_only_and_empty() -> None:
    store = _store()
    store.create("poddisruptionbudgets", _pdb("web", "shop", {"matchLabels": {"app": "web"}}))
    store.create("poddisruptionbudgets", _pdb("db", "shop", {"matchLabels": {"app": "db"}}))
    store.create(
        "poddisruptionbudgets",
        _pdb("exprs", "shop", {"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
    )
    store.create("poddisruptionbudgets", _pdb("all", "shop", {}))
    store.create("poddisruptionbudgets", _pdb("none", "shop", None))
    store.create("poddisruptionbudgets", _pdb("web", "other", {"matchLabels": {"app": "web"}}))
    found = selection.selecting(store, "poddisruptionbudgets", "shop", [{"app": "web", "tier": "front"}])
    assert _names(found) == ["all", "exprs", "web"]
    # A selector changed to another app leaves the bucket
    store.mutate(
        "poddisruptionbudgets",
        "shop",
        "web",
        lambda p: p["spec"].update(selector={"matchLabels": {"app": "db"}}),
    )
    found = selection.selecting(store, "poddisruptionbudgets", "shop", [{"app": "web"}])
    assert _names(found) == ["all", "exprs"]


def test_without_the_indexes_the_namespace_is_listed() -> None:
    store = Store()
    store.create("pods", _pod("web-0", "shop", app="web"))
    store.create(
        "services", {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"selector": {"app": "web"}}}
    )
    assert _names(selection.pods_selected(store, "shop", {"matchLabels": {"app": "web"}})) == ["web-0"]
    assert _names(selection.selecting(store, "services", "shop", [{"app": "web"}])) == ["web"]
