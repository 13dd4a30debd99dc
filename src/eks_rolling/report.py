"""`eks-rolling report`: a roll's timeline as a PNG (one row per node, colored by step, polling
waits hatched, evictions / 429s / Redis failovers marked) and an HTML page holding it and the
per-node table. matplotlib comes with the sandbox extra only (never in the Lambda layer), so it is
imported when a report is drawn."""

from __future__ import annotations

import html
from pathlib import Path

from .timeline import STEP_ORDER, Timeline, node_table

COLORS = {
    "redis": "#d62728",
    "drain": "#1f77b4",
    "owners": "#2ca02c",
    "exclude": "#9467bd",
    "deregistration": "#8c564b",
    "terminate": "#7f7f7f",
    "hooks": "#17becf",  # pre-drain and post-replace hooks, when set
}
MARKERS = {"evicted": ("v", "#000000"), "refused": ("x", "#ff7f0e"), "failover": ("*", "#e6b800")}
PNG_NAME = "timeline.png"
HTML_NAME = "report.html"


def render_png(t: Timeline, path: Path, note: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = t.rows
    fig, ax = plt.subplots(figsize=(14, 1.4 + 0.55 * max(len(rows), 1)))
    t0 = t.start
    for y, row in enumerate(rows):
        for seg in row.segments:
            if seg.step == "replaced":
                continue
            x, w = (seg.start - t0).total_seconds(), max((seg.end - seg.start).total_seconds(), 0.05)
            ax.barh(y, w, left=x, height=0.6, color=COLORS[seg.step], linewidth=0)
            if seg.waiting:  # the step's color, hatched: polling or a timed wait
                ax.barh(y, w, left=x, height=0.6, fill=False, hatch="///", edgecolor="white", linewidth=0)
        for mark in row.marks:
            shape, color = MARKERS[mark.kind]
            ax.plot((mark.at - t0).total_seconds(), y - 0.42, shape, color=color, markersize=9, zorder=3)
        if row.done:
            ax.plot((row.end - t0).total_seconds(), y, "|", color="black", markersize=16)
        ax.text(
            (row.end - t0).total_seconds() + 0.5,
            y,
            f"{row.evicted} evicted" + (f", {row.refusals}x 429" if row.refusals else ""),
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(rows)), [f"w{r.wave} {r.label} ({r.az})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    span = max((t.end - t0).total_seconds(), 1.0)
    ax.set_xlim(0, span * 1.16)  # room for the eviction counts after the last bars
    for start, end in t.surges:  # a batch's new nodes booting and joining: no old node moves
        ax.axvspan(
            (start - t0).total_seconds(), (end - t0).total_seconds(), color="#f2e6b3", alpha=0.5, zorder=0
        )
    ax.set_xlabel(f"seconds since the roll started ({t0:%Y-%m-%d %H:%M:%S} UTC){note}")
    ax.set_title(
        f"{t.roll.rsplit(':', 1)[-1]}: {t.status}, {len(t.done)} of {t.planned} node(s) replaced",
        fontsize=11,
    )
    ax.grid(axis="x", alpha=0.3)
    hooked = any(seg.step == "hooks" for r in t.rows for seg in r.segments)
    shown = [*STEP_ORDER, "hooks"] if hooked else STEP_ORDER
    legend: list[Artist] = [Patch(color=COLORS[s], label=s) for s in shown]
    legend.append(Patch(facecolor="#999999", hatch="///", edgecolor="white", label="polling / timed wait"))
    legend.append(Patch(color="#f2e6b3", label="new nodes booting (surge)"))
    legend += [
        Line2D([], [], marker=shape, color=color, linestyle="", label=kind)
        for kind, (shape, color) in MARKERS.items()
    ]
    ax.legend(
        handles=legend,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 - 0.3 / max(len(rows), 1)),
        ncol=6,
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend below the axes included
    plt.close(fig)
    return path


def render_html(t: Timeline, png: Path, path: Path) -> Path:
    table = node_table(t)
    head = list(table[0]) if table else []
    cells = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in head) + "</tr>" for r in table
    )
    marks = "\n".join(
        f"<li>{m.at:%H:%M:%S.%f}"[:-3] + f" {html.escape(r.label)}: {html.escape(m.label)}</li>"
        for r in t.rows
        for m in sorted(r.marks, key=lambda m: m.at)
        if m.kind != "evicted"
    )
    waves = "".join(
        f"<li>wave {w.index} {html.escape(w.name)}: {w.status}, {w.nodes} node(s)</li>" for w in t.waves
    )
    path.write_text(
        f"""<!doctype html>
<html><head><meta charset="utf-8"><title>eks-rolling {html.escape(t.roll)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body>
<h1>Roll {html.escape(t.roll.rsplit(":", 1)[-1])}: {t.status}</h1>
<p>{html.escape(t.roll)}<br>started {t.start:%Y-%m-%d %H:%M:%S} UTC, last event {t.end:%H:%M:%S} UTC;
{len(t.done)} node(s) replaced, {len(t.in_flight)} in flight, {t.left} left of {t.planned}.</p>
<ul>{waves}</ul>
<img src="{html.escape(png.name)}" alt="timeline: one row per node, colored by step" style="max-width:100%">
<h2>Nodes (seconds per step)</h2>
<table><tr>{"".join(f"<th>{html.escape(k)}</th>" for k in head)}</tr>
{cells}</table>
<h2>429 refusals and Redis failovers</h2><ul>{marks or "<li>none</li>"}</ul>
</body></html>
"""
    )
    return path


def write_report(t: Timeline, out_dir: Path, prefix: str = "", note: str = "") -> tuple[Path, Path]:
    """`<prefix>timeline.png` and `<prefix>report.html` in out_dir; `note` ends the time axis' label."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = render_png(t, out_dir / f"{prefix}{PNG_NAME}", note)
    return png, render_html(t, png, out_dir / f"{prefix}{HTML_NAME}")
