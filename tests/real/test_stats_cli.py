"""``uwsgi-mules stats`` against a real uWSGI stats server in every form it offers.

uWSGI serves ``--stats`` on TCP (``host:port``) or a unix socket (a path, or
``@name``: abstract), each plain (JSON at once) or with ``--stats-http``
(waits for a request). The command must detect which and exit 0 only when it
showed queues. Metrics come from ``--metric`` declarations (binary and
pyuwsgi) or from the C plugin (binary only).
"""

from __future__ import annotations

import pickle
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import UwsgiServer, free_port
from uwsgi_mules.cli import EXIT_NO_METRICS, EXIT_OK, EXIT_UNREADABLE, main
from uwsgi_mules.monitor.sources.stats_address import read_stats
from uwsgi_mules.monitor.text_view import queue_rows

pytestmark = pytest.mark.real

APP = ["--module", "tests.contract.app:application", "--processes", "1"]
#: metrics an application declares itself (as the demo does), settable with uwsgi.metric_set
DECLARED = [
    "--enable-metrics",
    "--metric", "name=uwsgi_mules.mule.1.depth_messages,type=gauge,initial_value=7",
    "--metric", "name=uwsgi_mules.mule.1.sent,type=counter,initial_value=9",
]


def _address(form: str, tmp_path: Path) -> tuple[str, list[str]]:
    """(address for the command, uWSGI stats options) of one form."""
    if form in ("tcp", "tcp-http"):
        address = f"127.0.0.1:{free_port()}"
    elif form in ("unix", "unix-http"):
        address = str(tmp_path / "stats.sock")
    else:
        address = f"@uwsgi-mules-test-{uuid.uuid4().hex[:12]}"
    return address, ["--stats", address, *(["--stats-http"] if form.endswith("-http") else [])]


@pytest.fixture
def stats_server(request: pytest.FixtureRequest, real_uwsgi: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    form: str = request.param
    address, options = _address(form, tmp_path)
    with UwsgiServer(tmp_path, [*APP, *DECLARED, *options]) as server:
        server.wait_for_log("*** Stats server enabled on")
        yield form, address


@pytest.mark.parametrize("stats_server", ["tcp", "tcp-http", "unix", "unix-http", "abstract"], indirect=True)
def test_every_stats_form_is_detected_and_shown(
    stats_server: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    form, address = stats_server
    reading = read_stats(address)
    assert reading.protocol == ("http" if form.endswith("-http") else "json")
    assert "workers" in reading.data
    rows = {row.queue: row.values for row in queue_rows(reading.data)}
    assert rows == {"mule.1": {"depth_messages": 7, "sent": 9}}

    assert main(["stats", address]) == EXIT_OK
    out = capsys.readouterr().out
    assert ("--stats-http" in out) == form.endswith("-http")
    assert next(line for line in out.splitlines() if line.startswith("mule.1 ")).split() == ["mule.1", "7", "9"]
    # the other spellings of the same address reach the same server
    if form.startswith("tcp"):
        port = address.rsplit(":", 1)[1]
        for spelling in (f":{port}", f"http://127.0.0.1:{port}", f"tcp://localhost:{port}"):
            assert read_stats(spelling).protocol == reading.protocol, spelling
    elif form.startswith("unix"):
        assert read_stats(f"unix:{address}").protocol == reading.protocol


def test_watch_refreshes_and_stops_after_count(
    real_uwsgi: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address, options = _address("tcp-http", tmp_path)
    with UwsgiServer(tmp_path, [*APP, *DECLARED, *options]) as server:
        server.wait_for_log("*** Stats server enabled on")
        assert main(["stats", address, "--watch", "0.1", "--count", "3"]) == EXIT_OK
    assert capsys.readouterr().out.count("mule.1 ") == 3


@pytest.mark.parametrize("metrics", ["disabled", "no-queues"])
def test_no_queue_metrics_is_an_error_with_the_reason(
    metrics: str, real_uwsgi: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address, options = _address("tcp", tmp_path)
    extra = ["--enable-metrics"] if metrics == "no-queues" else []
    with UwsgiServer(tmp_path, [*APP, *extra, *options]) as server:
        server.wait_for_log("*** Stats server enabled on")
        assert main(["stats", address]) == EXIT_NO_METRICS
    err = capsys.readouterr().err
    assert ("without --enable-metrics" in err) == (metrics == "disabled")
    assert ("mules_plugin is not loaded" in err) == (metrics == "no-queues")


def test_an_http_server_that_is_not_uwsgi_stats_is_refused(
    real_uwsgi: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with UwsgiServer(tmp_path, APP) as server:  # the app answers HTTP, not stats JSON
        assert main(["stats", f"127.0.0.1:{server.port}"]) == EXIT_UNREADABLE
    assert "cannot read stats" in capsys.readouterr().err


def test_stats_command_shows_plugin_depth_and_counters(
    plugin_so: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_port = free_port()
    args = [
        "--plugin", str(plugin_so), *APP,
        "--mule=tests.contract.tasks:sleeper", "--mule", "--farm", "reports:1,2",
        "--enable-metrics", "--stats", f"127.0.0.1:{stats_port}",
    ]
    with UwsgiServer(tmp_path, args) as server:
        server.wait_for_log("mules_plugin: ready")
        server.wait_for_log("spawned uWSGI mule 2 ")
        body = pickle.dumps(("tests.contract.tasks:raw_fill", (1, 100), {}))
        request = urllib.request.Request(server.base_url + "/call", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert pickle.loads(response.read()) == ("ok", 278)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = {r.queue: r.values for r in queue_rows(read_stats(f"127.0.0.1:{stats_port}").data)}
            if rows.get("mule.1", {}).get("depth_messages") == 278:
                break
            time.sleep(0.2)
        assert rows["mule.1"]["depth_messages"] == 278
        assert rows["mule.1"]["depth_bytes"] == 27_800
        assert {"shared", "mule.1", "mule.2", "farm.reports"} <= set(rows)
        assert main(["stats", f"127.0.0.1:{stats_port}"]) == EXIT_OK
    out = capsys.readouterr().out
    mule_line = next(line for line in out.splitlines() if line.startswith("mule.1 "))
    assert mule_line.split()[1:3] == ["278", "27800"]
