"""`eks-rolling demo` (what `make demo` runs) without its Redis groups: the live progress lines
and the report's contract (build/demo-report.json). The Redis half of the report is built by
the same functions the Redis e2e tests check (sentinel_report, cluster_report)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from eks_rolling.cli import main

pytestmark = [pytest.mark.slow]


def test_demo_rolls_the_field_report_and_writes_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator runs the demo (Redis left out: its own e2e tests cover it)
    code = main(["demo", "--no-redis", "--out", str(tmp_path)])
    out = capsys.readouterr().out

    # Then it exits 0 and printed progress: nodes old/new, the current step, evictions, elapsed
    assert code == 0, out
    progress = [line for line in out.splitlines() if re.match(r"\[\s*\d+\.\ds\] old \d+ new \d+ \|", line)]
    assert len(progress) > 5 and "evictions" in progress[-1], out
    assert any(re.search(r"\| ip-10-0-\d+-\d+: [A-Z]\w+", line) for line in progress), out  # a node's step
    # ... a line only when something changed, not one per poll
    changes = [line.split("|", 1)[1] for line in progress]
    assert all(a != b for a, b in itertools.pairwise(changes)), progress
    assert re.search(r"\[\s*[\d.]+s\] old 6 new 0 ", out) and re.search(r"\] old 0 new 6 ", out), out
    # ... and wrote the report with what the issue asks for
    report = json.loads((tmp_path / "demo-report.json").read_text())
    assert (
        report["old_instances_before"] == report["nodes_replaced"] == 6 and report["old_instances_left"] == 0
    )
    assert report["failures"] == [] and report["availability"] == {"errors": 0, "error_samples": []}
    # ...and says which timings it ran with: the realistic profile, all scaled by one factor (a
    # 60 s registration x 0.05), and what the roll cost per replaced node
    assert report["timing"]["profile"] == "realistic" and report["timing"]["time_factor"] == 0.05
    assert report["timing"]["sandbox_timings_s"]["node_boot_s"] == pytest.approx(60 * 0.05)
    assert "realistic timings, time factor 0.05" in out
    counts = report["execution"]["counts"]
    assert counts["nodes"] == 6 and counts["history_events"] == report["execution"]["history_events"]
    assert counts["per_node"]["polling_rounds"] > 0 and "polling rounds" in out
    assert report["pdb_violations"] == 0 and report["duration_s"] > 0
    assert report["execution"]["status"] == "SUCCEEDED"
    restored = report["restored"]
    assert restored["cluster_autoscaler_replicas"] and restored["asg_desired"] and restored["asg_max"]
    assert restored["processes"] and all(restored["processes"].values())
    for d in report["min_ready"]:
        assert d["min_ready"] >= d["pdb_min_available"], d
    assert {d["workload"] for d in report["min_ready"] if d["kind"] == "Deployment"} >= {
        "shop/api",
        "shop/web",
        "shop/worker",
    }
    history = json.loads(Path(report["execution"]["history_path"]).read_text())
    assert len(history) == report["execution"]["history_events"] > 100
    assert "redis" not in report
    # ... and traffic through the ingress load balancer: none failed during the roll, while the
    # baseline drain (no exclude label, no deregistration wait) in the same run lost requests
    traffic = report["traffic"]
    assert traffic["failed"] == 0 and traffic["requests"] >= traffic["min_requests"] > 0, traffic
    assert traffic["baseline"]["failed"] > 0, traffic["baseline"]
    assert "traffic through the load balancer" in out and "baseline (" in out
    assert "demo-report.json" in out and "audit trail" in out
    # ... and the roll's timeline beside the report (issue 12 item 8): a PNG and the HTML page
    # holding it, one row per replaced node, and the roll's own metrics from its EMF lines
    png, page = tmp_path / "demo-timeline.png", tmp_path / "demo-report.html"
    assert report["timeline"] == {"png": str(png), "html": str(page), "nodes": report["timeline"]["nodes"]}
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
    assert 'src="demo-timeline.png"' in page.read_text() and "demo-timeline.png" in out
    rows = report["timeline"]["nodes"]
    # (terminate_s is rounded to 0.1 s: a terminate whose EC2 facts are remembered can take under
    # 0.05 s of this wall clock, 0.0 in one fresh-clone run; done means it reached NodeReplaced)
    assert len(rows) == 6 and all(r["done"] and r["drain_s"] > 0 and r["terminate_s"] >= 0 for r in rows)
    assert report["metrics"]["NodesReplaced"]["sum"] == 6
