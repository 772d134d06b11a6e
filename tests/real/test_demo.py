"""The README's demo command works (it needs pyuwsgi)."""

from __future__ import annotations

import re
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


def test_demo_stats_shows_the_queues_while_it_runs(real_uwsgi: str) -> None:
    if real_uwsgi != "pyuwsgi":
        pytest.skip("the demo runs on embedded pyuwsgi; this environment has the uwsgi binary")
    from tests.support.server import free_port

    address = f"127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "uwsgi_mules.cli", "demo", "--stats", address, "--timeout", "90"],
        capture_output=True, text=True, timeout=150,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"uwsgi-mules stats {address} --watch 1" in result.stdout
    assert "12 of 12 offloaded calls ran" in result.stdout
    tables = [
        {m[0]: [int(v) for v in m[1].split()] for m in re.findall(r"^(mule\.\d+|farm\.\S+) +([\d ]+)$", block, re.M)}
        for block in result.stdout.split(" queues (")[1:]
    ]
    assert tables and all(set(t) == {"mule.1", "mule.3", "farm.reports"} for t in tables), result.stdout
    # columns: depth_messages, sent, received
    assert any(row[0] > 0 for table in tables for row in table.values()), "no queue was ever seen waiting"
    assert all(len(row) == 3 and 0 <= row[2] <= row[1] <= 4 for table in tables for row in table.values())
