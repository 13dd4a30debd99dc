"""A roll's progress and timeline from its execution histories (parent and wave children), as
`eks-rolling status` and `eks-rolling report` read them, on a real sandbox roll of three waves."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from eks_rolling.aws.histories import read_timeline
from eks_rolling.cli import main
from eks_rolling.report import COLORS
from eks_rolling.timeline import STEP_ORDER, build_timeline, node_table, render_status
from tests.e2e.conftest import Field

pytestmark = [pytest.mark.slow]


def _rgb(hex_color: str) -> tuple[float, float, float]:
    return tuple(int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def test_a_rolls_timeline_has_one_row_per_replaced_node_with_its_steps_in_order(
    field: Field, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    old_ids = {i.instance_id for i in field.state().instances}
    # Given a roll of the 6 old nodes in three waves (child executions) that has run to its end
    with field.runner(max_nodes_per_wave="2") as runner:
        result = runner.run(field.scenario.bump_launch_template(), timeout=300)
        arn = result["executionArn"]
        assert result["status"] == "SUCCEEDED"
        timeline = runner.timeline(arn)
        children = [(c.rsplit(":", 1)[-1], "RUNNING", runner.own_history(c)) for c in runner.children(arn)]
        parent = runner.own_history(arn)
        # When the operator asks for its status and its report (the CLI reads through boto3,
        # finding the waves from the parent's RollWave tasks)
        through_sfn = read_timeline(field.env.aws("stepfunctions"), arn)
        assert main(["status", arn]) == 0
        assert main(["report", arn, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out

    # Then the timeline has one row per replaced node, each in its wave, all replaced
    rows = timeline.rows
    assert {r.instance_id for r in rows} == old_ids and len(rows) == 6
    assert all(r.done for r in rows) and timeline.planned == 6 and timeline.left == 0
    assert sorted(r.wave for r in rows) == [1, 1, 2, 2, 3, 3]
    assert [w.status for w in timeline.waves] == ["SUCCEEDED"] * 3
    # ... each node's steps in time order: redis, drain, owners, exclude, deregistration, terminate
    for r in rows:
        assert all(a.end == b.start for a, b in zip(r.segments, r.segments[1:], strict=False)), r.label
        assert all(s.start <= s.end for s in r.segments)
        # (a polling loop's Task and Wait are one step; with no Redis pod MoveRedisPods returns at once)
        steps = [step for step, _ in itertools.groupby(s.step for s in r.segments)]
        assert steps == [*STEP_ORDER, "replaced"], r.label
        assert r.segments[-1].state == "NodeReplaced"
        assert r.evicted > 0 and any(m.kind == "evicted" for m in r.marks)
    # ... waves one after the other: no node of wave 2 starts before wave 1's last ends
    for w in (1, 2):
        assert max(r.end for r in rows if r.wave == w) <= min(r.start for r in rows if r.wave == w + 1)
    # ... the same from the CLI's reading of the histories
    assert node_table(through_sfn) == node_table(timeline)
    assert "SUCCEEDED" in out and "nodes: 6 done, 0 in flight, 0 left (of 6)" in out
    assert all(f"wave {i} " in out for i in (1, 2, 3))

    # Mid-roll (the first wave's history cut after its first node replaced): done, in flight
    # with their current step, left, and an estimate of the time left
    first = children[0][2]
    cut = next(
        i
        for i, ev in enumerate(first)
        if (ev.get("stateEnteredEventDetails") or {}).get("name") == "NodeReplaced"
    )
    mid = build_timeline(arn, "RUNNING", parent, [(children[0][0], "RUNNING", first[: cut + 1])])
    assert (len(mid.done), len(mid.in_flight), mid.left) == (1, 1, 4)
    assert mid.in_flight[0].current in {
        "TerminateInstance",
        "DeregistrationDelay",
        "ExcludeFromLoadBalancers",
        "WaitOwnersReady",
        "PauseBeforeOwnersCheck",
        "DrainNode",
        "BackOffBeforeDrain",
    }
    eta = mid.eta_seconds()
    assert eta is not None and eta > 0
    text = render_status(mid)
    assert "1 done, 1 in flight, 4 left (of 6)" in text and "estimated time left" in text
    assert f"in flight: {mid.in_flight[0].label}" in text

    # And the picture exists, is a real PNG with the steps' colors on it, and the page holds it
    png, page = tmp_path / "timeline.png", tmp_path / "report.html"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    pixels = matplotlib.image.imread(png)[:, :, :3]
    for step in ("drain", "deregistration", "terminate"):
        hit = (abs(pixels - _rgb(COLORS[step])).max(axis=2) < 0.02).sum()
        assert hit > 200, f"no {step} bar in the timeline"
    html = page.read_text()
    assert 'src="timeline.png"' in html and all(i in html for i in old_ids)
