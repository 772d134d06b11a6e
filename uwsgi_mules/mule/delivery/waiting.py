"""Offloaded calls waiting for their time, kept where a crash cannot erase them.

A mule that receives a call whose due time (``offload_in``, ``offload_at``,
a retry's backoff) has not come yet keeps it in a :class:`WaitingRoom`: a
heap ordered by due time, mirrored in an append-only file of the instance's
runtime directory (``mule<N>.waiting``; in memory on the fake). Adding or
taking a call appends one record (no fsync: the page cache survives the
death of the process; a reload or a stop moves waiting calls to the durable
backlog with the queued offloads). The mule respawned after a crash reads
the file back. The receive loop looks at the heap's top only between
batches of messages and when its poll times out, so thousands of waiting
calls cost nothing per message.
"""

from __future__ import annotations

import heapq
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...envelope import WireTarget

FILE_MAGIC = b"UWSGIMULES-WAITING-1\n"
_ADD = 1
_TAKEN = 2
_KIND_MULE = 0
_KIND_FARM = 1
#: record kind, entry id, due time, target kind, mule id or farm-name length, body length
_RECORD = struct.Struct("!BQdBiI")
#: rewrite the file when it holds more than this many records beyond twice the live ones
_COMPACT_SLACK = 1024


@dataclass(order=True)
class WaitingCall:
    """One call waiting for ``due`` (epoch seconds): its target and verified body."""

    due: float
    entry_id: int
    target: WireTarget = field(compare=False)
    body: bytes = field(compare=False, repr=False)


class WaitingRoom:
    """The calls one mule holds until their time (see the module)."""

    def __init__(self, path: Path | None = None, log: Callable[[str], None] = lambda line: None) -> None:
        self.path = path
        self.log = log
        #: a heap: ``calls[0]`` is the earliest (read it, change it only through the methods)
        self.calls: list[WaitingCall] = []
        self._next_id = 1
        self._records = 0  #: records in the file
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.calls)

    def __bool__(self) -> bool:
        return bool(self.calls)

    def next_due(self) -> float | None:
        """The due time of the earliest waiting call, or None."""
        return self.calls[0].due if self.calls else None

    def add(self, due: float, target: WireTarget, body: bytes) -> WaitingCall:
        """Keep a call until ``due`` (written to the file before it returns)."""
        call = WaitingCall(due, self._next_id, target, bytes(body))
        self._next_id += 1
        self._append(_encode(_ADD, call))
        heapq.heappush(self.calls, call)
        return call

    def pop_due(self, now: float) -> WaitingCall | None:
        """Remove and return the earliest call if it is due at ``now`` (one at
        a time: the caller marks it running before taking the next)."""
        heap = self.calls
        if not heap or heap[0].due > now:
            return None
        call = heapq.heappop(heap)
        if not heap:
            self._truncate()
        else:
            self._append(_RECORD.pack(_TAKEN, call.entry_id, 0.0, 0, 0, 0))
            if self._records > 2 * len(heap) + _COMPACT_SLACK:
                self._rewrite()
        return call

    def take_all(self) -> list[WaitingCall]:
        """Every waiting call, earliest first (the file keeps them until :meth:`forget_file`)."""
        calls = sorted(self.calls)
        self.calls.clear()
        return calls

    def forget_file(self) -> None:
        """Empty the file (what it held was saved elsewhere)."""
        self._truncate()

    def load(self) -> int:
        """Read back what a previous process of this mule left waiting; returns how many."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self.log(f"uwsgi-mules: cannot read the waiting tasks of {self.path.name}: {exc}")
            return 0
        live: dict[int, WaitingCall] = {}
        offset = len(FILE_MAGIC) if data.startswith(FILE_MAGIC) else len(data)
        while offset + _RECORD.size <= len(data):
            kind, entry_id, due, target_kind, value, length = _RECORD.unpack_from(data, offset)
            offset += _RECORD.size
            if kind == _TAKEN:
                live.pop(entry_id, None)
                continue
            target: WireTarget
            if target_kind == _KIND_FARM:
                target = data[offset : offset + value]
                offset += value
            else:
                target = value
            body = data[offset : offset + length]
            offset += length
            if len(body) != length:  # the process died while writing: the call was never kept
                break
            live[entry_id] = WaitingCall(due, entry_id, target, body)
        for call in live.values():
            call.entry_id = self._next_id
            self._next_id += 1
            self.calls.append(call)
        heapq.heapify(self.calls)
        self._rewrite()
        return len(live)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- the file ----------------------------------------------------------------------

    def _append(self, data: bytes) -> None:
        if self.path is None:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size == 0:
                os.write(self._fd, FILE_MAGIC)
        os.write(self._fd, data)
        self._records += 1

    def _truncate(self) -> None:
        if self.path is None:
            return
        self.close()
        try:
            os.truncate(self.path, 0)
        except FileNotFoundError:
            pass
        self._records = 0

    def _rewrite(self) -> None:
        """Write only the live calls (a new file renamed over the old one)."""
        if self.path is None:
            return
        self.close()
        if not self.calls:
            self._truncate()
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, FILE_MAGIC + b"".join(_encode(_ADD, c) for c in self.calls))
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._records = len(self.calls)


def _encode(kind: int, call: WaitingCall) -> bytes:
    target = call.target
    if isinstance(target, bytes):
        return _RECORD.pack(kind, call.entry_id, call.due, _KIND_FARM, len(target), len(call.body)) + target + call.body
    return _RECORD.pack(kind, call.entry_id, call.due, _KIND_MULE, int(target), len(call.body)) + call.body


def waiting_path(runtime_dir: Path, mule_id: int) -> Path:
    """The waiting file of mule ``mule_id``."""
    return runtime_dir / f"mule{mule_id}.waiting"
