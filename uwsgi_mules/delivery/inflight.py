"""The task a mule is running, kept where its death cannot erase it.

A record is a small memory-mapped file per mule in the instance's runtime
directory (in memory on the fake): the mule copies the envelope in before
running it and clears one byte after. A mule killed mid-task (``SIGKILL``,
OOM, harakiri, an expired reload mercy) leaves the record set, and the mule
respawned in its place reads it back. The header also keeps the mule's
crash counters, which survive respawns.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

#: state byte, 3 pad bytes, message length; then the counters
_STATE = struct.Struct("=BxxxI")
_COUNTERS = struct.Struct("=QQQ")
HEADER_SIZE = _STATE.size + _COUNTERS.size
IDLE = 0
RUNNING = 1


@dataclass(frozen=True)
class CrashCounters:
    """What happened to tasks that killed their mule."""

    crashed: int = 0  #: tasks found unfinished after the mule died
    requeued: int = 0  #: of those, sent again (``retries``)
    dead: int = 0  #: of those, given up after their last retry


class InflightRecord:
    """One mule's record: ``begin(message)`` before a task, ``end()`` after."""

    def __init__(self, capacity: int, path: Path | None = None) -> None:
        self.capacity = capacity
        self.path = path
        size = HEADER_SIZE + capacity
        if path is None:
            self._buf: mmap.mmap | bytearray = bytearray(size)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                if os.fstat(fd).st_size < size:
                    os.ftruncate(fd, size)
                self._buf = mmap.mmap(fd, size)
            finally:
                os.close(fd)

    @property
    def buffer(self) -> mmap.mmap | bytearray:
        """The record's bytes (the mule loop writes them inline: see :meth:`begin`)."""
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


def mark_running(buffer: mmap.mmap | bytearray, message: bytes) -> None:
    """Record ``message`` as running in a record's buffer (a message over the
    capacity keeps its head): the message first, then the state. The C
    speedups write the same bytes (``uwsgi_mules/_speedups.c``)."""
    length = len(message)
    capacity = len(buffer) - HEADER_SIZE
    if length > capacity:  # the head names the task
        length = capacity
        message = message[:length]
    if length >= 0:
        buffer[HEADER_SIZE : HEADER_SIZE + length] = message
        _STATE.pack_into(buffer, 0, RUNNING, length)


def record_path(runtime_dir: Path, mule_id: int) -> Path:
    return runtime_dir / f"mule{mule_id}.inflight"
