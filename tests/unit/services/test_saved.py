"""Saved state on the ASG's tags: round-trips within the tag size, and a stale run's originals win."""

from __future__ import annotations

from eks_rolling.services.saved import Saved, merged_stale, read_saved


def test_saved_state_round_trips_and_stale_originals_win() -> None:
    tags = {
        "eks-rolling/saved/run-old": Saved(
            "run-old", ca=2, desired=6, min_size=3, max_size=8, processes=["AZRebalance"]
        ).encode(),
        "eks-rolling/saved/run-new": Saved("run-new", ca=0, desired=8).encode(),
        "team": "platform",
    }
    assert len(tags["eks-rolling/saved/run-old"]) < 256
    saved = read_saved(tags)
    assert set(saved) == {"run-old", "run-new"}
    stale = merged_stale(saved, "run-new")
    assert stale is not None and (stale.ca, stale.desired, stale.max_size, stale.processes) == (
        2,
        6,
        8,
        ["AZRebalance"],
    )
    assert merged_stale({"run-new": saved["run-new"]}, "run-new") is None
