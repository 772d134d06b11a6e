"""``uwsgi-mules dashboard``: binds 127.0.0.1 by default, serves the page over
an instance's directory, prints a new action token unless given one, and
``--read-only`` turns actions off; ``uwsgi-mules stats`` renders the model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.monitor.instance_files import make_instance, write_beat
from tests.support.server import REPO_ROOT, free_port
from uwsgi_mules.cli import build_parser
from uwsgi_mules.monitor.text_view import render_snapshot
from uwsgi_mules.monitor import InstanceSources, take_snapshot


def test_the_default_bind_is_this_machine_only() -> None:
    args = build_parser().parse_args(["dashboard"])
    assert args.bind == "127.0.0.1:9292" and not args.read_only and args.token is None


def _serve(runtime: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uwsgi_mules.cli", "dashboard", "--dir", str(runtime), "--bind", f"127.0.0.1:{port}",
         *extra], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/snapshot", timeout=5):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError(process.communicate()[0])


def test_standalone_page_serves_the_instance_and_prints_a_token(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    make_instance(runtime, dead=1, waiting=2)
    process, url = _serve(runtime)
    try:
        with urllib.request.urlopen(url + "/api/snapshot", timeout=10) as response:
            data = json.loads(response.read())
        assert data["read_only"] is False and len(data["dead"]) == 1 and data["waiting"][0]["count"] == 2
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert b'"tokenNeeded": true' in response.read()
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "serving http://127.0.0.1:" in output and "action token: " in output


def test_read_only_page_has_no_token_and_no_actions(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    make_instance(runtime, dead=1, waiting=0)
    process, url = _serve(runtime, "--read-only")
    try:
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert b'"canAct": false' in response.read()
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "action token" not in output


def test_stats_text_renders_the_model(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    make_instance(runtime, dead=1, waiting=2)
    write_beat(runtime)
    text = render_snapshot(take_snapshot(InstanceSources(runtime_dir=runtime)))
    assert "mule 1: running 'tests.t:slow'" in text and "2 waiting" in text and "ran 5 failed 1" in text
    assert "dead tasks: 1 (newest" in text and "\\x1b[31m" in text and "\x1b" not in text
    assert "unknown: queue depth" in text
