"""A full runtime filesystem on real uWSGI: no crash loop, nothing lost.

``$XDG_RUNTIME_DIR`` is usually a small tmpfs. The instance's runtime
directory is put on a tmpfs of its own, mounted under the test's temp dir
(root only, and only with ``UWSGIMULES_TEST_TMPFS=1``, which ``.ci/run``
sets: a test never mounts anything behind a developer's back); it is
unmounted in a ``finally``. 200 ``offload_in`` calls are accepted and
written to the waiting file, the tmpfs is filled to its last byte, the mule
is killed (its successor reads the waiting file back on a full filesystem),
then plain offloads, more ``offload_in`` calls and calls longer than a page
(copied into the mule's in-flight record, a mapped file) are sent. Every call is
counted by id: sent, executed, lost, duplicated, early; the mule is
respawned once (the kill), never in a loop.

And, on every real server (no tmpfs needed): calls past the waiting-room
limit (``UWSGIMULES_WAITING_MAX``) are kept as dead tasks, not lost.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.real.test_reload_delivery import read_done, wait_for
from tests.real.test_retries_real import make_server, offload

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

OPT_IN = "UWSGIMULES_TEST_TMPFS"
TMPFS_SIZE = "1m"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted under the test's temp dir (unmounted afterwards)."""
    require_real_uwsgi()
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(f"mounts a tmpfs: only with {OPT_IN}=1 (set by .ci/run)")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir(mode=0o700)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine does not let the test mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(directory: Path) -> int:
    """Write a file in ``directory`` until the filesystem is full; returns its size."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    written = 0
    try:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    written += os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return written


def stable_size(path: Path, seconds: float = 1.0, timeout: float = 30.0) -> bool:
    """Whether ``path`` exists and its size stayed the same for ``seconds``."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        if size != last:
            last, since = size, time.monotonic()
        elif size > 0 and time.monotonic() - since >= seconds:
            return True
        time.sleep(0.1)
    return False


def mule_pid(log: str, mule_id: int = 1) -> int:
    return int(re.findall(rf"spawned uWSGI mule {mule_id} \(pid: (\d+)\)", log)[-1])


def test_a_full_runtime_filesystem_neither_crash_loops_the_mule_nor_loses_calls(tmpfs: Path) -> None:
    workdir, mount = tmpfs.parent, tmpfs
    runtime = mount / "runtime"
    server = make_server(workdir, env={"UWSGIMULES_RUNTIME_DIR": str(runtime)})
    sent_at: dict[int, float] = {}
    with server:
        count, at = offload(server, "task=later&n=200&start=0&in=5")  # written to the waiting file
        sent_at.update({i: at + 5 for i in range(200)})
        assert count == 200 and stable_size(runtime / "mule1.waiting"), server.log_text()[-3000:]
        filled = fill(mount)
        os.kill(mule_pid(server.log_text()), signal.SIGKILL)  # its successor reads the file back on a full disk
        assert wait_for(lambda: server.log_text().count("spawned uWSGI mule 1 ") == 2, 30), server.log_text()[-3000:]
        count, at = offload(server, "task=later&n=20&start=1000")  # plain offloads
        sent_at.update({i: at for i in range(1000, 1020)})
        assert count == 20
        count, at = offload(server, "task=later&n=50&start=2000&in=3")  # held in memory
        sent_at.update({i: at + 3 for i in range(2000, 2050)})
        assert count == 50
        # messages longer than a page: the mule copies each into its in-flight record
        count, at = offload(server, "task=carry&n=10&start=3000&pad=30000")
        sent_at.update({i: at for i in range(3000, 3010)})
        assert count == 10
        expected = set(sent_at)
        assert wait_for(lambda: expected <= {int(r["id"]) for r in read_done(workdir)}, 60), server.log_text()[-3000:]
        time.sleep(1.0)  # a duplicate would show up here
        log = server.log_text()
    runs = [r for r in read_done(workdir) if r["kind"] in ("later", "carry")]
    done = Counter(int(r["id"]) for r in runs)  # type: ignore[arg-type]
    lost = sorted(expected - set(done))
    duplicated = sorted(i for i, n in done.items() if n > 1)
    early = sorted(int(r["id"]) for r in runs if float(r["at"]) < sent_at[int(r["id"])] - 0.01)  # type: ignore[arg-type]
    respawns = log.count("spawned uWSGI mule 1 ") - 1
    errors = [line for line in log.splitlines() if "ERROR the waiting file" in line and "cannot be written" in line]
    print(f"\nfull tmpfs ({filled} filler bytes): sent {len(expected)}, executed {sum(done.values())}, "
          f"lost {len(lost)}, duplicated {len(duplicated)}, early {len(early)}; mule 1 respawned {respawns} "
          f"time(s); {len(errors)} waiting-file error line(s)")
    assert (lost, duplicated, early) == ([], [], []), (lost, duplicated, early)
    assert respawns == 1, "the kill only: no crash loop"
    assert 1 <= len(errors) <= 2, errors  # at most one per mule process that hit the full filesystem
    assert "Traceback" not in log, log[-3000:]


def test_calls_past_the_waiting_limit_are_kept_as_dead_tasks(tmp_path: Path) -> None:
    """The same scenario as on the fake (tests/test_dead_and_waiting.py)."""
    require_real_uwsgi()
    runtime = tmp_path / "runtime"
    server = make_server(tmp_path, env={"UWSGIMULES_WAITING_MAX": "5"})
    with server:
        count, at = offload(server, "task=later&n=8&start=0&in=2")
        assert count == 8
        assert wait_for(lambda: len(read_done(tmp_path)) >= 5, 30), server.log_text()[-3000:]
        time.sleep(0.5)
        log = server.log_text()
        listing = subprocess.run([sys.executable, "-m", "uwsgi_mules.cli", "dead", "--dir", str(runtime)],
                                 capture_output=True, text=True, timeout=60).stdout
    done = Counter(int(r["id"]) for r in read_done(tmp_path))  # type: ignore[arg-type]
    dead = [line for line in log.splitlines() if "DEAD task" in line]
    print(f"\nwaiting limit 5: sent 8, executed {sum(done.values())}, dead {len(dead)}, "
          f"lost {8 - len(done) - len(dead)}")
    assert done == Counter(range(5)), "the first five wait and run once"
    assert len(dead) == 3 and all("UWSGIMULES_WAITING_MAX" in line for line in dead), dead
    assert "3 dead task(s)" in listing, listing
