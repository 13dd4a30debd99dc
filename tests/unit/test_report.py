"""eks_rolling.report: the timeline picture draws hook steps in their own color, with a legend
entry only when a roll has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from eks_rolling.timeline import build_timeline
from tests.unit.test_timeline import PARENT, _entered

pytest.importorskip("matplotlib")


def test_a_roll_with_hooks_draws_them(tmp_path: Path) -> None:
    import numpy as np
    from matplotlib import image

    from eks_rolling.report import COLORS, render_png

    wave = [
        _entered(10, "PreDrainHooks", 1),
        _entered(40, "DrainNode", 1),
        _entered(45, "TerminateInstance", 1),
        _entered(46, "PostReplaceHooks", 1),
        _entered(60, "NodeReplaced", 1),
    ]
    t = build_timeline("r", "SUCCEEDED", PARENT, [("r-w01", "SUCCEEDED", wave)])
    pixels = image.imread(render_png(t, tmp_path / "t.png"))[..., :3]
    hooks = np.array([int(COLORS["hooks"][i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert (abs(pixels - hooks).max(axis=2) < 0.02).sum() > 500
