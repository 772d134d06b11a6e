"""The README's demo command works (it needs pyuwsgi)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.real


def test_demo_runs_real_mules_and_a_farm_then_exits(real_uwsgi: str) -> None:
    if real_uwsgi != "pyuwsgi":
        pytest.skip("the demo runs on embedded pyuwsgi; this environment has the uwsgi binary")
    result = subprocess.run(
        [sys.executable, "-m", "uwsgi_mules.cli", "demo", "--timeout", "60"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 of 12 offloaded calls ran" in result.stdout
    assert "resize_image   mule 1: 4" in result.stdout
    assert "send_email     mule 3: 4" in result.stdout
    ran_reports = [ln for ln in result.stdout.splitlines() if ln.strip().startswith("build_report")]
    assert sum(int(ln.rsplit(":", 1)[1]) for ln in ran_reports) == 4
    assert all(" mule 1:" in ln or " mule 2:" in ln for ln in ran_reports)
