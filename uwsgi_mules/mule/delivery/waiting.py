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

The file is :data:`FILE_MAGIC`, a random 16-byte file nonce, then records::

    kind (1: add, 2: taken) | entry id (8) | due (8, a double) | target kind (1: 0 mule, 1 farm)
    | mule id or farm-name length (4) | task path length (4) | body length (4)
    | farm name | task path | body | tag (16)

``tag`` is the instance key's keyed BLAKE2b of the nonce, the record's index
in the file and everything before the tag: the bodies are pickles, so the
file is trusted for what the key verifies, not for the directory's mode (the
file lives as long as the runtime directory, which keeps the instance key).
Reading checks every field and stops at the first record that is cut or does
not verify: the records before it are taken back, the loss is logged.
"""

from __future__ import annotations

import heapq
import math
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...envelope import Signer, WireTarget
from .backlog import MAX_FARM_NAME, MAX_MULE_ID, MAX_PATH, BacklogError, SavedOffload, read_private

FILE_MAGIC = b"UWSGIMULES-WAITING-2\n"
NONCE_SIZE = 16
TAG_SIZE = 16
_ADD = 1
_TAKEN = 2
_KIND_MULE = 0
_KIND_FARM = 1
#: record kind, entry id, due time, target kind, mule id or farm-name length, path length, body length
_RECORD = struct.Struct("!BQdBiII")
_INDEX = struct.Struct("!Q")
#: rewrite the file when it holds more than this many records beyond twice the live ones
_COMPACT_SLACK = 1024


@dataclass(order=True)
class WaitingCall:
    """One call waiting for ``due`` (epoch seconds): its target, verified body and task path."""

    due: float
    entry_id: int
    target: WireTarget = field(compare=False)
    body: bytes = field(compare=False, repr=False)
    path: str = field(default="", compare=False)

    def saved(self) -> SavedOffload:
        """The call as a backlog entry (its due time is in its body's metadata)."""
        return SavedOffload(self.target, self.body, self.path)


@dataclass
class _Parsed:
    """What a waiting file holds: the live calls, how many records, and why reading stopped early."""

    live: dict[int, WaitingCall] = field(default_factory=dict)
    records: int = 0
    damage: str = ""
    #: the file ends inside a record: a process died writing it (the task it
    #: held is named by that process's in-flight record), not a damage
    torn: bool = False


class WaitingRoom:
    """The calls one mule holds until their time (see the module); ``signer``
    (the instance key) signs the file's records: it is needed with a ``path``."""

    def __init__(self, path: Path | None = None, log: Callable[[str], None] = lambda line: None,
                 signer: Signer | None = None) -> None:
        if path is not None and signer is None:
            raise ValueError("a waiting room kept in a file needs the instance's Signer to sign it")
        self.path = path
        self.log = log
        self.signer = signer
        #: a heap: ``calls[0]`` is the earliest (read it, change it only through the methods)
        self.calls: list[WaitingCall] = []
        self._next_id = 1
        self._records = 0  #: records in the file
        self._nonce: bytes | None = None  #: of the file being appended to (None: start a new file)
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.calls)

    def __bool__(self) -> bool:
        return bool(self.calls)

    def next_due(self) -> float | None:
        """The due time of the earliest waiting call, or None."""
        return self.calls[0].due if self.calls else None

    def add(self, due: float, target: WireTarget, body: bytes, path: str = "") -> WaitingCall:
        """Keep a call until ``due`` (written to the file before it returns)."""
        call = WaitingCall(due, self._next_id, target, bytes(body), path)
        self._next_id += 1
        self._append(_ADD, call)
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
            self._append(_TAKEN, WaitingCall(0.0, call.entry_id, 0, b""))
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
            data = read_private(self.path)
        except BacklogError as exc:
            self.log(f"uwsgi-mules: the waiting tasks of {self.path.name} are not read back: {exc}")
            return 0
        if not data:
            return 0
        parsed = parse(data, self.signer)  # type: ignore[arg-type]
        if parsed.torn:
            self.log(f"uwsgi-mules: the waiting file {self.path.name} ends inside a record ({parsed.damage}): "
                     f"{len(parsed.live)} waiting task(s) taken back")
        elif parsed.damage:
            self.log(
                f"uwsgi-mules: ERROR the waiting file {self.path.name} is damaged ({parsed.damage}): "
                f"{len(parsed.live)} waiting task(s) of its intact records taken back, the rest is dropped"
            )
        for call in parsed.live.values():
            call.entry_id = self._next_id
            self._next_id += 1
            self.calls.append(call)
        heapq.heapify(self.calls)
        self._rewrite()
        return len(parsed.live)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- the file ----------------------------------------------------------------------

    def _append(self, kind: int, call: WaitingCall) -> None:
        if self.path is None:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            if self._nonce is None or os.fstat(self._fd).st_size == 0:
                os.ftruncate(self._fd, 0)
                self._nonce = os.urandom(NONCE_SIZE)
                self._records = 0
                os.write(self._fd, FILE_MAGIC + self._nonce)
        os.write(self._fd, encode_record(self.signer, self._nonce, self._records, kind, call))  # type: ignore[arg-type]
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
        self._nonce = None

    def _rewrite(self) -> None:
        """Write only the live calls (a new file renamed over the old one)."""
        if self.path is None:
            return
        self.close()
        if not self.calls:
            self._truncate()
            return
        nonce = os.urandom(NONCE_SIZE)
        records = [encode_record(self.signer, nonce, i, _ADD, c) for i, c in enumerate(self.calls)]  # type: ignore[arg-type]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, FILE_MAGIC + nonce + b"".join(records))
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._nonce = nonce
        self._records = len(records)


def encode_record(signer: Signer, nonce: bytes, index: int, kind: int, call: WaitingCall) -> bytes:
    """The signed bytes of one record, the ``index``-th of the file with ``nonce``."""
    target = call.target
    path = call.path.encode("utf-8", "surrogateescape")
    if isinstance(target, bytes):
        head = _RECORD.pack(kind, call.entry_id, call.due, _KIND_FARM, len(target), len(path), len(call.body))
        unsigned = head + target + path + call.body
    else:
        head = _RECORD.pack(kind, call.entry_id, call.due, _KIND_MULE, int(target), len(path), len(call.body))
        unsigned = head + path + call.body
    return unsigned + signer.tag(nonce + _INDEX.pack(index) + unsigned)


def parse(data: bytes, signer: Signer) -> _Parsed:
    """The live calls of a waiting file's bytes (magic included), from its
    verified records; never raises on any input and always ends."""
    parsed = _Parsed()
    header = len(FILE_MAGIC) + NONCE_SIZE
    if not data.startswith(FILE_MAGIC) or len(data) < header:
        parsed.damage = "no waiting file header"
        return parsed
    nonce = data[len(FILE_MAGIC) : header]
    offset, size = header, len(data)
    while offset < size:
        if size - offset < _RECORD.size:
            parsed.damage = f"truncated record at byte {offset}"
            parsed.torn = True
            break
        kind, entry_id, due, target_kind, value, path_len, body_len = _RECORD.unpack_from(data, offset)
        farm_len = value if target_kind == _KIND_FARM else 0
        if kind not in (_ADD, _TAKEN) or target_kind not in (_KIND_MULE, _KIND_FARM) or not math.isfinite(due) or (
            not 0 <= value <= (MAX_FARM_NAME if target_kind == _KIND_FARM else MAX_MULE_ID)
        ) or (target_kind == _KIND_FARM and not value and kind == _ADD) or path_len > MAX_PATH:
            parsed.damage = f"invalid record at byte {offset}"
            break
        start = offset + _RECORD.size
        end = start + farm_len + path_len + body_len
        if end + TAG_SIZE > size:
            parsed.damage = f"record at byte {offset} is cut ({end + TAG_SIZE - size} bytes missing)"
            parsed.torn = True
            break
        if signer.tag(nonce + _INDEX.pack(parsed.records) + data[offset:end]) != data[end : end + TAG_SIZE]:
            parsed.damage = f"record at byte {offset} does not verify with the instance key (damaged or forged)"
            break
        parsed.records += 1
        offset = end + TAG_SIZE
        if kind == _TAKEN:
            parsed.live.pop(entry_id, None)
            continue
        target: WireTarget = data[start : start + farm_len] if target_kind == _KIND_FARM else value
        path = data[start + farm_len : start + farm_len + path_len].decode("utf-8", "surrogateescape")
        parsed.live[entry_id] = WaitingCall(due, entry_id, target, data[start + farm_len + path_len : end], path)
    return parsed


def waiting_path(runtime_dir: Path, mule_id: int) -> Path:
    """The waiting file of mule ``mule_id``."""
    return runtime_dir / f"mule{mule_id}.waiting"
