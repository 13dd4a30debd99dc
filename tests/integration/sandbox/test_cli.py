"""`eks-rolling-sandbox up` in the foreground: the field-report scenario is up in under 30 s,
kubectl and eks-rolling (from other processes) can use it, and stopping it leaves no process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]
BIN = Path(sys.executable).parent


def _redis_under(directory: Path) -> list[int]:
    """redis-server processes working in `directory` (Redis retitles itself, but chdirs to its dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if "redis-server" in (proc / "comm").read_text() and str(directory) in os.readlink(proc / "cwd"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no {pattern!r} within {timeout}s; output: {''.join(lines)}")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_up_serves_the_field_report_and_stops_clean(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            str(BIN / "eks-rolling-sandbox"),
            "up",
            "--kubeconfig",
            str(kubeconfig),
            "--scenario",
            "field-report",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _wait_for_line(proc, r"Ctrl-C to stop", timeout=90)
        up = re.search(r"sandbox up in ([\d.]+)s: (\d+) nodes, (\d+) pods", "".join(lines))
        assert up, lines
        # The field-report scenario, Redis processes included, is up in under 30 s.
        assert float(up.group(1)) < 30 and int(up.group(2)) == 8 and int(up.group(3)) >= 40
        env_file = Path(str(kubeconfig) + ".env")
        env = dict(os.environ)
        for line in env_file.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        data_dir = Path(env["EKS_ROLLING_KUBE_CA_FILE"]).parents[1]
        assert len(_redis_under(data_dir)) == 12  # sentinel group (6) and Redis Cluster (6)
        if shutil.which("kubectl"):
            out = subprocess.run(
                ["kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes,pods", "-A"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0, out.stderr
            assert "Ready" in out.stdout and "redis-master-0" in out.stdout
        plan = subprocess.run(
            [str(BIN / "eks-rolling"), "plan", "--asg", "eks-workers"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert plan.returncode == 0, plan.stderr
        assert "Every instance is up to date" in plan.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0
    # Nothing left behind: no redis-server of that sandbox, and its data directory is gone.
    time.sleep(0.5)
    assert _redis_under(data_dir) == []
    assert not data_dir.exists()
