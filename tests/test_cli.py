"""The command line without uWSGI: version, help, arguments, addresses."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from uwsgi_mules import __version__, envelope
from uwsgi_mules.cli import EXIT_UNREADABLE, EXIT_USAGE, main
from uwsgi_mules.monitor.sources.stats_address import StatsError, parse_address, read_stats
from uwsgi_mules.monitor.text_view import missing_metrics_reason, queue_rows, render_table


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"uwsgi-mules {__version__} (")
    assert ("C speedups" in out) == (envelope.speedups() is not None), out


def test_no_arguments_prints_the_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: uwsgi-mules")
    assert "demo" in err and "stats" in err and "required" not in err
    assert "``" not in err  # plain text, not reStructuredText


def test_help_shows_defaults_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("demo", "stats"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
    out = capsys.readouterr().out
    assert "(default: 60)" in out  # demo --timeout
    assert "--stats ADDRESS" in out
    assert "exit status:" in out and "--stats-http" in out


def test_console_script_entry_point_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "uwsgi_mules.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.parametrize(
    ("text", "family", "target"),
    [
        ("127.0.0.1:9191", socket.AF_INET, ("127.0.0.1", 9191)),
        (":9191", socket.AF_INET, ("127.0.0.1", 9191)),
        ("0.0.0.0:9191", socket.AF_INET, ("127.0.0.1", 9191)),
        ("[::1]:9191", socket.AF_INET6, ("::1", 9191)),
        ("localhost:9191", socket.AF_INET, ("localhost", 9191)),
        ("http://127.0.0.1:9191/", socket.AF_INET, ("127.0.0.1", 9191)),
        ("http://stats.local", socket.AF_INET, ("stats.local", 80)),
        ("tcp://127.0.0.1:9191", socket.AF_INET, ("127.0.0.1", 9191)),
        ("/run/app/stats.sock", socket.AF_UNIX, "/run/app/stats.sock"),
        ("stats.sock", socket.AF_UNIX, "stats.sock"),
        ("unix:/run/stats.sock", socket.AF_UNIX, "/run/stats.sock"),
        ("unix:///run/stats.sock", socket.AF_UNIX, "/run/stats.sock"),
        ("@app-stats", socket.AF_UNIX, "\0app-stats"),
        ("\\0app-stats", socket.AF_UNIX, "\0app-stats"),
    ],
)
def test_every_address_form_parses(text: str, family: socket.AddressFamily, target: object) -> None:
    address = parse_address(text)
    assert address.family == family
    assert (address.path if family == socket.AF_UNIX else (address.host, address.port)) == target
    assert address.http_hint == text.startswith("http://")


@pytest.mark.parametrize("text", ["", "  ", "https://127.0.0.1:9191", "host:abc", "host:0", "host:70000", "@", "unix:"])
def test_bad_addresses_are_refused_with_exit_2(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StatsError):
        parse_address(text)
    assert main(["stats", text]) == EXIT_USAGE
    assert "uwsgi-mules stats:" in capsys.readouterr().err


def test_nothing_listening_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        assert main(["stats", f"127.0.0.1:{port}"]) == EXIT_UNREADABLE
    assert main(["stats", str(tmp_path / "missing.sock")]) == EXIT_UNREADABLE
    err = capsys.readouterr().err
    assert "nothing listens on" in err and "no unix socket at" in err


def test_a_server_that_sends_nothing_is_reported(tmp_path: Path) -> None:
    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        with pytest.raises(StatsError, match="no answer"):
            read_stats(path, timeout=0.5, probe=0.1)


def test_rows_table_and_reasons() -> None:
    stats = {
        "metrics": {
            "mules_plugin.mule.2.sent": {"value": 5},
            "mules_plugin.shared.depth_messages": {"value": 0},
            "mules_plugin.farm.reports.received": {"value": 3},
            "uwsgi_mules.mule.10.sent": {"value": 1},
            "core.busy_workers": {"value": 1},
        }
    }
    rows = queue_rows(stats)
    assert [row.queue for row in rows] == ["shared", "mule.2", "mule.10", "farm.reports"]
    table = render_table(rows).splitlines()
    assert table[0].split() == ["queue", "depth_messages", "sent", "received"]  # only columns that have values
    assert table[3].split() == ["mule.2", "-", "5", "-"]
    assert "--enable-metrics" in missing_metrics_reason({"workers": []})
    assert "not loaded" in missing_metrics_reason({"metrics": {}})


def test_a_plain_socket_slower_than_the_probe_is_still_read(tmp_path: Path) -> None:
    """A plain stats socket never reads: when it speaks after the probe sent a
    request, the connection may be reset; the reader retries and waits."""
    import json
    import threading
    import time

    path = str(tmp_path / "slow.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(4)
    accepted = []

    def serve() -> None:
        for _ in range(2):
            try:
                client, _ = server.accept()
            except OSError:
                return
            accepted.append(client)
            with client:
                time.sleep(0.3)  # slower than the probe below
                client.sendall(json.dumps({"version": "2.0", "workers": []}).encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        reading = read_stats(path, timeout=3.0, probe=0.05)
    finally:
        server.close()
    assert reading.protocol == "json" and reading.data["version"] == "2.0"
    assert len(accepted) == 2  # the first connection was reset (unread request), the second waited
