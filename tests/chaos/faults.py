"""Faults injected into a real uWSGI instance, and what each one explains.

Each function does one fault to a running :class:`RealInstance` (see
:mod:`.real_driver`) and returns how many mule respawns it explains.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.server import MULE_READY

#: the layout: mules 1 and 2 programmed, mule 3 signal-only
MULES = 3
PROGRAMMED = (1, 2)
#: seconds the harakiri fault's task sleeps (past mule-harakiri)
SLEEPY_SECONDS = 4.0
#: the opt-in for mounting a tmpfs (root only), set by .ci/run
TMPFS_ENV = "UWSGIMULES_TEST_TMPFS"
TMPFS_SIZE = "256k"


def tmpfs_allowed() -> str | None:
    """None when this run may mount a tmpfs, else why not."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    if os.environ.get(TMPFS_ENV) != "1":
        return f"mounting a small tmpfs needs the opt-in {TMPFS_ENV}=1 (.ci/run sets it)"
    return None


def mount_tmpfs(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(directory)],
                   check=True, capture_output=True, timeout=30)


def unmount(directory: Path) -> None:
    subprocess.run(["umount", "-l", str(directory)], capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` up (the filler file is returned, to free it later)."""
    filler = directory / "filler"
    with contextlib.suppress(OSError):  # ENOSPC: full (perhaps at once)
        with open(filler, "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    return filler


def usage(directory: Path) -> str:
    """What is in ``directory``: each file's size."""
    return ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(directory.iterdir()) if p.is_file())


def touch(path: Path) -> None:
    """A new mtime uWSGI sees (it compares whole seconds)."""
    stamp = max(time.time(), path.stat().st_mtime + 1.0) + 1.0
    os.utime(path, (stamp, stamp))


def mule_pids(log: str) -> dict[int, int]:
    """Mule number -> pid of its latest spawn, from ``spawned uWSGI mule N (pid: P)``."""
    found = {}
    for line in log.splitlines():
        if line.startswith("spawned uWSGI mule "):
            words = line.replace("(", " ").replace(")", " ").split()
            with contextlib.suppress(ValueError, IndexError):
                found[int(words[3])] = int(words[-1])
    return found


def kill_mule(log: str, mule: int) -> int:
    """SIGKILL mule ``mule``; returns its pid."""
    pid = mule_pids(log)[mule]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return pid


#: ``uwsgi-mules ARGS...`` started at the epoch time argv[1] (after the imports), to make two overlap
AT_ONCE = (
    "import sys, time\n"
    "from uwsgi_mules.cli import main\n"
    "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def resend_race(base: Path) -> list[subprocess.CompletedProcess[str]]:
    """Two ``uwsgi-mules dead --resend-all`` on ``base`` at the same moment."""
    start_at = time.time() + 1.0  # both have imported uwsgi_mules by then
    command = [sys.executable, "-c", AT_ONCE, str(start_at), "dead", "--dir", str(base), "--resend-all"]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    done = []
    for process in running:
        out, err = process.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


def ready_count(log: str) -> int:
    return sum(1 for line in log.splitlines() if line == MULE_READY)
