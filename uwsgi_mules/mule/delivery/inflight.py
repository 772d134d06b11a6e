"""The task a mule is running, kept where its death cannot erase it.

A record is a small memory-mapped file per mule in the instance's runtime
directory (in memory on the fake): the mule copies the envelope in before
running it and clears one byte after. A mule killed mid-task (``SIGKILL``,
OOM, harakiri, an expired reload mercy) leaves the record set, and the mule
respawned in its place reads it back. The header also keeps the mule's
crash counters, which survive respawns.

The file's blocks are allocated when it is opened (``posix_fallocate``):
writing through the mapping into a hole of a full filesystem (a tmpfs
runtime directory) would kill the mule with ``SIGBUS``, on every respawn.
When they cannot be allocated the record is refused (``OSError``) and the
mule keeps it in memory.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ...envelope import RECORD_COUNTERS as _COUNTERS
from ...envelope import RECORD_HEADER as HEADER_SIZE
from ...envelope import RECORD_IDLE as IDLE
from ...envelope import RECORD_RUNNING as RUNNING
from ...envelope import RECORD_STATE as _STATE


@dataclass(frozen=True)
class CrashCounters:
    """What happened to tasks that killed their mule."""

    crashed: int = 0  #: tasks found unfinished after the mule died
    requeued: int = 0  #: of those, sent again (``retries``)
    dead: int = 0  #: of those, given up after their last retry


class InflightRecord:
    """One mule's record: written running before a task
    (:func:`~uwsgi_mules.envelope.mark_running`, by ``Signer.open``), ``end()`` after."""

    def __init__(self, capacity: int, path: Path | None = None) -> None:
        self.capacity = capacity
        self.path = path
        size = HEADER_SIZE + capacity
        if path is None:
            self._buf: mmap.mmap | bytearray = bytearray(size)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
                if info.st_size < size:
                    os.ftruncate(fd, size)
                try:
                    os.posix_fallocate(fd, 0, size)  # no hole left to fault on
                except OSError as exc:
                    raise OSError(exc.errno, f"the blocks of {path.name} cannot be allocated: {exc.strerror}") from exc
                self._buf = mmap.mmap(fd, size)
            finally:
                os.close(fd)

    @property
    def buffer(self) -> mmap.mmap | bytearray:
        """The record's bytes (``Signer.open`` and the C receive loop write them)."""
        return self._buf

    def end(self) -> None:
        self._buf[0] = IDLE

    def take_unfinished(self) -> bytes | None:
        """The message of a task the previous process never finished (and clear it)."""
        state, length = _STATE.unpack_from(self._buf, 0)
        if state != RUNNING:
            return None
        message = bytes(self._buf[HEADER_SIZE : HEADER_SIZE + min(length, self.capacity)])
        self._buf[0] = IDLE
        return message

    def counters(self) -> CrashCounters:
        return CrashCounters(*_COUNTERS.unpack_from(self._buf, _STATE.size))

    def count(self, *, crashed: int = 0, requeued: int = 0, dead: int = 0) -> CrashCounters:
        now = self.counters()
        updated = CrashCounters(now.crashed + crashed, now.requeued + requeued, now.dead + dead)
        _COUNTERS.pack_into(self._buf, _STATE.size, updated.crashed, updated.requeued, updated.dead)
        return updated

    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()


def record_path(runtime_dir: Path, mule_id: int) -> Path:
    return runtime_dir / f"mule{mule_id}.inflight"
