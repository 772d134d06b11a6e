"""Which process schedules: the programmed mule that holds a file lock.

Every programmed mule (``uwsgi_mules.mule:run``) of an instance tries,
between batches and on its idle wake-ups (at least once a second while
idle), to take an exclusive ``flock`` on :data:`LOCK_NAME` next to the
state file, without waiting. The one that gets it schedules until it dies;
the kernel releases the lock when it exits, however it exits (a stop, a
reload, ``SIGKILL``), and another mule (or its respawned successor) takes it
within about a second. Why a mule: it is the process that runs offloads
and already wakes up regularly; workers serve requests and come and go
with the load; the master runs no Python between requests. Why a lock
and not a fixed mule: mule 1 may be busy, dead or reloading, and the lock
needs no configuration; two instances sharing one backlog directory share
one scheduler too.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..instance import secure_dir

LOCK_NAME = "periodic.lock"

__all__ = ["LOCK_NAME", "SchedulerLock"]


class SchedulerLock:
    """A non-blocking ``flock`` on ``directory/periodic.lock``, held while this process lives."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """True if this process holds the lock now (it keeps it)."""
        if self._fd is not None:
            return True
        secure_dir(self.path.parent)  # made private when missing, refused when others can write it
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder_pid(directory: Path) -> int | None:
    """The pid written by the process that holds (or last held) the lock."""
    try:
        text = (directory / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
