"""What the C plugin's master saves at a reload or an exit, and what it refuses.

The master saves the messages left in the mule queues to the runtime
directory that the Python side computes (default location included), reads
the key and writes the backlog file only through checked private
directories (``O_NOFOLLOW``), drains past a zero-length message, and logs
whatever it cannot save. Runs in the tox ``plugin`` env (skipped without
the plugin).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.contract.harness import plugin_path
from tests.real.test_reload_delivery import count, make_server, report, send, wait_for
from tests.support.server import UwsgiServer

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

TOTAL = 200


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    if plugin_path() is None:
        pytest.skip("needs the C plugin (tox -e plugin)")
    yield tmp_path


def queue_for_the_signal_only_mule(server: UwsgiServer, total: int, start: int = 0) -> None:
    assert int(server.get(f"/?task=work_on_mule2&n={total}&start={start}&ms=20")) == total


def reload_and_count(server: UwsgiServer, workdir: Path, total: int, title: str) -> tuple[list[int], list[int], str]:
    os.kill(server.process.pid, signal.SIGHUP)  # type: ignore[union-attr]
    assert wait_for(lambda: "mules_plugin: saved" in server.log_text(), 30), server.log_text()[-3000:]
    wait_for(lambda: len(count(workdir)) >= total - 1, 60)
    time.sleep(1.0)  # a duplicate would show up here
    lost, duplicated = report(title, total, count(workdir), range(total))
    return lost, duplicated, server.log_text()


@pytest.mark.parametrize("location", ["TMPDIR", "XDG_RUNTIME_DIR"])
def test_the_master_saves_to_the_default_directory_the_mules_replay(workdir: Path, location: str) -> None:
    """No UWSGIMULES_RUNTIME_DIR: the plugin and the mules compute the same
    directory (a TMPDIR that tempfile.gettempdir() would skip included)."""
    place = workdir / "place"
    place.mkdir(mode=0o700)
    env = {"UWSGIMULES_RUNTIME_DIR": "", location: str(place)}
    if location == "TMPDIR":
        env["XDG_RUNTIME_DIR"] = ""
    server = make_server(workdir, ["--mule"], env)  # mule 1 programmed, mule 2 signal-only
    with server:
        queue_for_the_signal_only_mule(server, TOTAL)
        wait_for(lambda: sum(count(workdir).values()) >= 5, 10)
        lost, duplicated, log = reload_and_count(server, workdir, TOTAL, f"plugin save under {location}")
    base = place / ("uwsgi-mules" if location == "XDG_RUNTIME_DIR" else f"uwsgi-mules-{os.getuid()}")
    saved = next(line for line in log.splitlines() if "mules_plugin: saved" in line)
    assert f" to {base}/{server_pid(log)}-" in saved, saved
    # at most the task the signal-only mule was cut in (uWSGI stops it at once; it is
    # named when the record was written, and lost unnamed when uWSGI had read it but
    # not yet handed it to Python)
    assert len(lost) <= 1 and not duplicated, log[-3000:]


def server_pid(log: str) -> str:
    """The master's pid from uWSGI's start-up log."""
    line = next(line for line in log.splitlines() if line.startswith("spawned uWSGI master process"))
    return line.split("pid: ")[1].rstrip(")")


def test_a_zero_length_message_does_not_stop_the_drain(workdir: Path) -> None:
    server = make_server(workdir, ["--mule"])
    with server:
        queue_for_the_signal_only_mule(server, TOTAL // 2)
        assert server.get("/?task=empty_to_mule2") == b"1"
        queue_for_the_signal_only_mule(server, TOTAL // 2, start=TOTAL // 2)
        lost, duplicated, log = reload_and_count(server, workdir, TOTAL, "plugin save past an empty message")
    assert "mules_plugin: dropped 1 empty message(s)" in log, log[-3000:]
    assert len(lost) <= 1 and not duplicated, log[-3000:]
    assert not [i for i in lost if i >= TOTAL // 2], "what was queued after the empty message is saved"


def test_the_backlog_directory_is_fsynced_after_the_rename(workdir: Path) -> None:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (the fsync is seen in the master's system calls)")
    server = make_server(workdir, ["--mule"], die_on_term=False)
    trace = workdir / "strace.txt"
    with server:
        master = server.process.pid  # type: ignore[union-attr]
        tracer = subprocess.Popen([strace, "-qq", "-o", str(trace), "-e", "trace=renameat,renameat2,rename,fsync",
                                   "-p", str(master)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if not wait_for(lambda: tracer_pid(master) != 0, 10):
                pytest.skip(f"strace cannot attach here: {tracer.stderr.read().decode() if tracer.poll() else ''}")
            queue_for_the_signal_only_mule(server, TOTAL)
            wait_for(lambda: sum(count(workdir).values()) >= 5, 10)
            os.kill(master, signal.SIGINT)  # a stop: the master saves and exits
            server.process.wait(60)  # type: ignore[union-attr]
        finally:
            tracer.wait(30)
        log = server.log_text()
    calls = trace.read_text().splitlines()
    renamed = next(i for i, line in enumerate(calls) if "rename" in line and "-master.queued" in line)
    dirfd = calls[renamed].split("(", 1)[1].split(",", 1)[0]
    print(f"\nmaster: {calls[renamed]} then {calls[renamed + 1:renamed + 2]}")
    assert "mules_plugin: saved" in log, log[-3000:]
    assert any(line.startswith(f"fsync({dirfd})") for line in calls[renamed + 1:]), calls[max(0, renamed - 2):]


def tracer_pid(pid: int) -> int:
    """The pid tracing ``pid`` (0: none)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize("swap", ["runtime directory", "key", "short key", "fifo key", "no key"])
def test_what_the_master_cannot_save_safely_is_refused_and_logged(workdir: Path, swap: str) -> None:
    runtime = workdir / "runtime"
    server = make_server(workdir, ["--mule"], die_on_term=False)
    with server:
        queue_for_the_signal_only_mule(server, TOTAL)
        # every process that will ever load the key has it (mule 2 once it ran a task):
        # none creates a new one after the swap
        assert wait_for(lambda: (runtime / "key").exists() and sum(count(workdir).values()) >= 2, 10)
        elsewhere = workdir / "elsewhere"
        if swap == "runtime directory":  # a link to a private directory of ours with a key of its own
            os.rename(runtime, elsewhere)
            runtime.symlink_to(elsewhere)
        elif swap == "key":
            elsewhere.mkdir(mode=0o700)
            (elsewhere / "key").write_bytes(b"k" * 32)
            (elsewhere / "key").chmod(0o600)
            (runtime / "key").unlink()
            (runtime / "key").symlink_to(elsewhere / "key")
        elif swap == "short key":
            (runtime / "key").write_bytes(b"short")
        elif swap == "fifo key":  # open() of a FIFO waits for a writer: the master must not
            (runtime / "key").unlink()
            os.mkfifo(runtime / "key", 0o600)
        else:
            (runtime / "key").unlink()
        server.process.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        server.process.wait(60)  # type: ignore[union-attr]
        log = server.log_text()
    line = next((ln for ln in log.splitlines() if "mules_plugin: ERROR" in ln and "dropped" in ln), "")
    print(f"\n{swap}: {line}")
    expected = {
        "runtime directory": "symbolic link or not a directory: refused",
        "key": "a symbolic link, refused",
        "short key": "holds 5 bytes, not 32",
        "fifo key": "the key file is not a regular file, refused",
        "no key": "there is no key file",
    }[swap]
    assert expected in log, log[-3000:]
    assert "message(s) left in the mule queues are dropped" in line and not line.startswith(
        "mules_plugin: ERROR 0 "
    ), log[-3000:]
    assert "mules_plugin: saved" not in log
    assert not list(workdir.rglob("*-master.queued"))
