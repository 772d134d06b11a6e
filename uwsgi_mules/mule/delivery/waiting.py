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

The file is a record file of the shared codec (:mod:`.records`: magic, file
nonce, signed records; framing, tag and the checks of reading are described
there) whose records are::

    kind (1: add, 2: taken) | entry id (8) | due (8, a double) | target kind (1: 0 mule, 1 farm)
    | mule id or farm-name length (4) | task path length (4) | body length (4)
    | farm name | task path | body | tag (16)

signed with the instance key, the record's index taking 8 bytes: the bodies
are pickles, so the file is trusted for what the key verifies, not for the
directory's mode (the file lives as long as the runtime directory, which
keeps the instance key). Reading stops at the first record that is cut or
does not verify (the records before it are taken back, the loss is logged);
a verified record with a bad field (a due time that is not a finite number)
is rejected alone, with a log line, and the records after it are read.

The room is bounded (``UWSGIMULES_WAITING_MAX`` calls, default
:data:`DEFAULT_LIMIT`): a call past it, or with a due time that is not a
finite number, is refused and handed to ``refused`` (the dispatcher keeps it
as a dead task, with a ``DEAD task`` log line), never dropped silently.

A full filesystem never stops the mule: a record is appended whole or the
file is cut back to its size before; when the file cannot be written the
room keeps its calls in memory, says so in ONE error line, and writes the
whole file again (at most every :attr:`WaitingRoom.retry_after` seconds)
until it can, with one line when it could.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import math
import os
import stat
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...datakey import DataSigner
from ...envelope import Signer, WireTarget
from .backlog import MAX_FARM_NAME, MAX_MULE_ID, MAX_PATH, SavedOffload
from .records import (
    NONCE_SIZE,
    BadRecord,
    Header,
    RecordFileError,
    RecordFormat,
    append_all_or_nothing,
    read_private,
    read_records,
    write_durably,
)

FILE_MAGIC = b"UWSGIMULES-WAITING-2\n"
LIMIT_ENV = "UWSGIMULES_WAITING_MAX"
#: calls one mule holds at most unless ``UWSGIMULES_WAITING_MAX`` says otherwise
DEFAULT_LIMIT = 100_000
_ADD = 1
_TAKEN = 2
_KIND_MULE = 0
_KIND_FARM = 1
#: record kind, entry id, due time, target kind, mule id or farm-name length, path length, body length
_RECORD = struct.Struct("!BQdBiII")


def _framing(values: Header) -> Sequence[int] | None:
    _, _, _, target_kind, value, path_len, body_len = values
    if target_kind not in (_KIND_MULE, _KIND_FARM):
        return None  # where the farm name ends is unknown
    return (value if target_kind == _KIND_FARM else 0), path_len, body_len


#: waiting files in the shared record codec (their byte layout is unchanged since version 2)
FORMAT = RecordFormat("waiting file", FILE_MAGIC, _RECORD, struct.Struct("!Q"), _framing, key_name="instance key")
#: rewrite the file when it holds more than this many records beyond twice the live ones
_COMPACT_SLACK = 1024


@dataclass(order=True, slots=True)
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
    #: why each verified record with a bad field was rejected (the records after it were read)
    rejected: list[str] = field(default_factory=list)


#: told of a call the room refuses (past its limit, or never due), and why
Refused = Callable[[WaitingCall, str], object]


class WaitingRoom:
    """The calls one mule holds until their time (see the module); ``signer``
    (the instance key) signs the file's records: it is needed with a ``path``.
    ``limit``: calls held at most; ``refused`` is told of each call refused
    (without it, each is dropped with an error line)."""

    def __init__(self, path: Path | None = None, log: Callable[[str], None] = lambda line: None,
                 signer: Signer | None = None, *, limit: int = DEFAULT_LIMIT, refused: Refused | None = None) -> None:
        if path is not None and signer is None:
            raise ValueError("a waiting room kept in a file needs the instance's Signer to sign it")
        self.path = path
        self.log = log
        self.signer = signer
        self.limit = max(1, limit)
        self.refused = refused
        #: a heap: ``calls[0]`` is the earliest (read it, change it only through the methods)
        self.calls: list[WaitingCall] = []
        #: why the file does not hold every waiting call ("" when it does)
        self.failure = ""
        #: seconds between two attempts to write the whole file again after a failure
        self.retry_after = 5.0
        self._failed_at = 0.0  #: monotonic time of the last failed write
        self._key = DataSigner(signer.key) if signer is not None else None
        self._next_id = 1
        self._records = 0  #: records in the file
        self._nonce: bytes | None = None  #: of the file being appended to (None: start a new file)
        self._fd: int | None = None
        self._size = 0  #: bytes in the file (while ``_fd`` is open)

    def __len__(self) -> int:
        return len(self.calls)

    def __bool__(self) -> bool:
        return bool(self.calls)

    def next_due(self) -> float | None:
        """The due time of the earliest waiting call, or None."""
        return self.calls[0].due if self.calls else None

    def add(self, due: float, target: WireTarget, body: bytes, path: str = "") -> WaitingCall | None:
        """Keep a call until ``due`` (its record appended to the file, or kept
        in memory when the file cannot be written); None when it is refused
        (given to ``refused``). Never raises for the file."""
        call = WaitingCall(due, self._next_id, target, bytes(body), path)
        why = self._refusal(due)
        if why:
            if self.refused is not None:
                self.refused(call, why)
            else:
                self.log(f"uwsgi-mules: ERROR a waiting call of {path or 'a task'} is dropped: {why}")
            return None
        self._next_id += 1
        heapq.heappush(self.calls, call)
        self._append(_ADD, call)
        return call

    def _refusal(self, due: float) -> str:
        if not math.isfinite(due):
            return f"its due time {due!r} is not a finite number"
        if len(self.calls) >= self.limit:
            where = self.path.name if self.path is not None else "this mule"
            return f"the waiting room of {where} holds {self.limit} calls, its limit ({LIMIT_ENV})"
        return ""

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
        """Read back what a previous process of this mule left waiting; returns
        how many. Never raises for the file: what cannot be read is logged."""
        path, signer = self.path, self.signer  # a file always has a signer (__init__)
        if path is None or signer is None:
            return 0
        _remove_old_temporary(path)
        if not path.exists():
            return 0
        try:
            data = read_private(path)
        except (RecordFileError, OSError) as exc:
            self.log(f"uwsgi-mules: the waiting tasks of {path.name} are not read back: {exc}")
            return 0
        if not data:
            return 0
        parsed = parse(data, signer)
        del data  # before the file is written again
        self._report(parsed)
        for call in parsed.live.values():
            call.entry_id = self._next_id
            self._next_id += 1
            self.calls.append(call)
        heapq.heapify(self.calls)
        self._rewrite()
        return len(parsed.live)

    def _report(self, parsed: _Parsed) -> None:
        name = self.path.name if self.path is not None else ""
        if parsed.torn:
            self.log(f"uwsgi-mules: the waiting file {name} ends inside a record ({parsed.damage}): "
                     f"{len(parsed.live)} waiting task(s) taken back")
        elif parsed.damage:
            self.log(
                f"uwsgi-mules: ERROR the waiting file {name} is damaged ({parsed.damage}): "
                f"{len(parsed.live)} waiting task(s) of its intact records taken back, the rest is dropped"
            )
        if parsed.rejected:
            self.log(f"uwsgi-mules: ERROR the waiting file {name}: {len(parsed.rejected)} record(s) rejected one "
                     f"by one ({'; '.join(parsed.rejected[:3])}); the records after them were read")

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    # -- the file ----------------------------------------------------------------------

    def _append(self, kind: int, call: WaitingCall) -> None:
        path, key = self.path, self._key  # a file always has a key (__init__)
        if path is None or key is None:
            return
        if self.failure:
            self._retry_whole_file()  # holds this call too: it is in the heap already
            return
        try:
            start = b""
            if self._fd is None:
                self._fd = self._open_for_append(path)
            if self._nonce is None or self._size == 0:
                os.ftruncate(self._fd, 0)
                self._nonce, self._records, self._size = os.urandom(NONCE_SIZE), 0, 0
                start = FORMAT.start(self._nonce)
            record = start + _encode(key, self._nonce, self._records, kind, call)
            append_all_or_nothing(self._fd, record, self._size)
        except OSError as exc:
            self._cannot_write(exc)
            return
        self._size += len(record)
        self._records += 1

    def _open_for_append(self, path: Path) -> int:
        """The file opened for appending (a FIFO or another non-regular file is refused, never waited on)."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        self._size = info.st_size
        return fd

    def _truncate(self) -> None:
        if self.path is None:
            return
        self.close()
        self._records = 0
        self._nonce = None
        try:
            os.truncate(self.path, 0)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._cannot_write(exc)
            return
        self._written_again()

    def _rewrite(self) -> None:
        """Write only the live calls (a new file renamed over the old one, which
        stays whole when the new one cannot be written)."""
        path, key = self.path, self._key  # a file always has a key (__init__)
        if path is None or key is None:
            return
        self.close()
        if not self.calls:
            self._truncate()
            return
        nonce = os.urandom(NONCE_SIZE)
        records = (_encode(key, nonce, i, _ADD, c) for i, c in enumerate(self.calls))
        try:
            write_durably(path, itertools.chain([FORMAT.start(nonce)], records), sync=False)
        except OSError as exc:
            self._cannot_write(exc)
            return
        self._nonce = nonce
        self._records = len(self.calls)
        self._written_again()

    def _cannot_write(self, exc: OSError) -> None:
        """The file does not hold every waiting call any more: said once, kept in memory."""
        self.close()
        self._nonce = None  # the next write is the whole file
        self._failed_at = time.monotonic()
        if self.failure:
            return
        self.failure = f"{type(exc).__name__}: {exc}"
        self.log(
            f"uwsgi-mules: ERROR the waiting file {self.path} cannot be written ({self.failure}): its "
            f"{len(self.calls)} waiting call(s) and the next ones are kept in memory only, and lost if this mule "
            f"dies before the file can be written again (tried every {self.retry_after:g}s; a reload or a stop "
            "still saves them to the backlog)"
        )

    def _retry_whole_file(self) -> None:
        if time.monotonic() - self._failed_at >= self.retry_after:
            self._rewrite()  # its failure does not log again
            if self.failure:
                self._failed_at = time.monotonic()

    def _written_again(self) -> None:
        if self.failure:
            self.failure = ""
            self.log(f"uwsgi-mules: the waiting file {self.path} is written again ({len(self.calls)} waiting "
                     "call(s) on disk)")


def encode_record(signer: Signer, nonce: bytes, index: int, kind: int, call: WaitingCall) -> bytes:
    """The signed bytes of one record, the ``index``-th of the file with ``nonce``."""
    return _encode(DataSigner(signer.key), nonce, index, kind, call)


def _encode(key: DataSigner, nonce: bytes, index: int, kind: int, call: WaitingCall) -> bytes:
    target = call.target
    path = call.path.encode("utf-8", "surrogateescape")
    if isinstance(target, bytes):
        values = (kind, call.entry_id, call.due, _KIND_FARM, len(target), len(path), len(call.body))
        return FORMAT.encode(key, nonce, index, values, (target, path, call.body))
    values = (kind, call.entry_id, call.due, _KIND_MULE, int(target), len(path), len(call.body))
    return FORMAT.encode(key, nonce, index, values, (b"", path, call.body))


def _check(values: Header) -> None:
    """Refuse a verified record with a field out of range (:class:`BadRecord`)."""
    kind, _, due, target_kind, value, path_len, _ = values
    if kind not in (_ADD, _TAKEN):
        raise BadRecord(f"unknown record kind {kind}")
    if kind == _TAKEN:
        return
    if not math.isfinite(due):
        raise BadRecord(f"due time {due!r} is not a finite number")
    if not 0 <= value <= (MAX_FARM_NAME if target_kind == _KIND_FARM else MAX_MULE_ID) or (
        target_kind == _KIND_FARM and not value
    ):
        raise BadRecord("its target is out of range")
    if path_len > MAX_PATH:
        raise BadRecord("its task path is too long")


def _remove_old_temporary(path: Path) -> None:
    """The temporary file older versions left next to ``path`` when a rewrite failed."""
    try:
        path.with_name(path.name + ".tmp").unlink()
    except OSError:
        pass


def parse(data: bytes, signer: Signer) -> _Parsed:
    """The live calls of a waiting file's bytes (magic included), from its
    verified records; never raises on any input and always ends (one pass,
    a copy of the live calls' bodies only)."""
    parsed = _Parsed()
    live = parsed.live
    paths: dict[bytes, str] = {}  #: one string per task path, not one per call

    def accept(values: Header, parts: list[memoryview]) -> None:
        _check(values)
        kind, entry_id, due, target_kind, value = values[:5]
        if kind == _TAKEN:
            live.pop(entry_id, None)
            return
        farm, raw_path, body = parts
        target: WireTarget = bytes(farm) if target_kind == _KIND_FARM else value
        raw = bytes(raw_path)
        path = paths.get(raw)
        if path is None:
            path = paths[raw] = raw.decode("utf-8", "surrogateescape")
        live[entry_id] = WaitingCall(due, entry_id, target, bytes(body), path)

    reading = read_records(FORMAT, data, DataSigner(signer.key), accept)
    parsed.records, parsed.damage, parsed.torn, parsed.rejected = (
        reading.records, reading.damage, reading.torn, reading.rejected)
    return parsed


def waiting_limit(value: str | None, log: Callable[[str], None]) -> int:
    """The waiting-room limit ``UWSGIMULES_WAITING_MAX`` says (``value``), else :data:`DEFAULT_LIMIT`."""
    if not value:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        log(f"uwsgi-mules: ERROR {LIMIT_ENV}={value!r} is not a positive number of calls; {DEFAULT_LIMIT} is used")
        return DEFAULT_LIMIT
    return limit


def waiting_path(runtime_dir: Path, mule_id: int) -> Path:
    """The waiting file of mule ``mule_id``."""
    return runtime_dir / f"mule{mule_id}.waiting"
