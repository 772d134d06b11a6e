"""``uwsgi-mules stats`` reads a running server's stats socket."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.server import UwsgiServer, free_port
from uwsgi_mules.cli import main
from uwsgi_mules.stats_view import queue_rows, read_stats

pytestmark = pytest.mark.real


def test_stats_command_shows_depth_and_counters(
    plugin_so: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_port = free_port()
    args = [
        "--plugin", str(plugin_so), "--module", "tests.contract.app:application", "--processes", "1",
        "--mule=tests.contract.tasks:sleeper", "--mule", "--farm", "reports:1,2",
        "--enable-metrics", "--stats", f"127.0.0.1:{stats_port}",
    ]
    with UwsgiServer(tmp_path, args) as server:
        server.wait_for_log("mules_plugin: ready")
        server.wait_for_log("spawned uWSGI mule 2 ")
        import pickle
        import urllib.request

        body = pickle.dumps(("tests.contract.tasks:raw_fill", (1, 100), {}))
        request = urllib.request.Request(server.base_url + "/call", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert pickle.loads(response.read()) == ("ok", 278)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = {r.queue: r.values for r in queue_rows(read_stats(f"127.0.0.1:{stats_port}"))}
            if rows.get("mule.1", {}).get("depth_messages") == 278:
                break
            time.sleep(0.2)
        assert rows["mule.1"]["depth_messages"] == 278
        assert rows["mule.1"]["depth_bytes"] == 27_800
        assert {"shared", "mule.1", "mule.2", "farm.reports"} <= set(rows)
        assert main(["stats", f"127.0.0.1:{stats_port}"]) == 0
    out = capsys.readouterr().out
    mule_line = next(line for line in out.splitlines() if line.startswith("mule.1 "))
    assert mule_line.split()[1:3] == ["278", "27800"]


def test_stats_command_explains_missing_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    from uwsgi_mules.stats_view import render_table

    assert "load the plugin" in render_table([])
    assert main(["stats", "127.0.0.1:1"]) == 1
    assert "cannot read stats" in capsys.readouterr().err
