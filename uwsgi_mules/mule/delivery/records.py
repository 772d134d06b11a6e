"""One codec for the signed record files a mule keeps: backlog files
(:mod:`.backlog`), waiting files (:mod:`.waiting`) and dead-task records
(:mod:`.dead`).

A file is its format's magic, a random 16-byte file nonce, then records::

    header (the format's fixed-size struct) | variable fields (their lengths read from the header) | tag (16)

``tag`` is a keyed BLAKE2b (16 bytes) of the format's domain, the file
nonce, the record's index in the file (the format's width) and everything
before the tag in the record: a record copied to another place or another
file does not verify. The key is the one the format's files are trusted
for: a data key (:mod:`uwsgi_mules.datakey`) or the instance key.

Reading (:func:`read_records`) never trusts a field before its tag:

1. framing: the header must fit in what is left and the lengths it gives
   must fit too; a file that ends inside a record is *torn* (a process died
   writing it) and reading stops there;
2. the tag, compared in constant time (:func:`hmac.compare_digest`): a
   record that does not verify stops the reading (its lengths are not
   trusted, nor anything after it): the records before it are the file's
   intact prefix;
3. the fields, by the format's reader: a verified record whose fields are
   out of range (a NaN due time, an unknown kind) is rejected alone, with
   the reason, and reading goes on with the next record.

Every step moves forward by at least a header, so reading always ends, in
one pass over the bytes.

Writing checks every ``os.write`` (a short write is continued, a write that
stores nothing raises ``ENOSPC``): :func:`write_durably` writes a whole file
all or nothing (a temporary file of the same directory, fsync, rename, fsync
of the directory; the temporary file is removed if anything fails) and
:func:`append_all_or_nothing` appends a record or cuts the file back to its
size before (``ftruncate`` needs no free space), so a full filesystem never
leaves a torn record behind.
"""

from __future__ import annotations

import errno
import hmac
import os
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...datakey import TAG_SIZE, DataSigner

NONCE_SIZE = 16
#: bytes written at once by :func:`write_durably` from chunks
WRITE_BATCH = 1 << 20
#: ``os.open`` flags of every record file read: never a link, never blocks on a FIFO
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

#: a record header's values, as ``struct`` unpacks them
Header = tuple[Any, ...]
#: the lengths of a record's variable fields, from its header's values; None: the header cannot be framed
Framing = Callable[[Header], Sequence[int] | None]
#: takes one verified record (header values, variable fields); raises :class:`BadRecord` to reject it alone
Accept = Callable[[Header, list[memoryview]], object]

__all__ = [
    "NONCE_SIZE", "TAG_SIZE", "BadRecord", "DataSigner", "Header", "Reading", "RecordFileError", "RecordFormat",
    "append_all_or_nothing", "fsync_dir", "read_private", "read_records", "write_all", "write_durably",
]


class RecordFileError(RuntimeError):
    """A record file that cannot be read or trusted at all (not ours, not private, not a file)."""


class BadRecord(ValueError):
    """A verified record whose fields are out of range: rejected alone."""


@dataclass(frozen=True)
class RecordFormat:
    """One kind of record file: its magic, header, index width and framing."""

    name: str  #: "backlog file", "waiting file"... (in messages)
    magic: bytes
    header: struct.Struct
    index: struct.Struct  #: the width of the record index in the tag
    framing: Framing
    domain: bytes = b""  #: signed before everything else (b"": the formats that predate it)
    key_name: str = "data key"  #: what signs it (in messages)

    @property
    def file_header_size(self) -> int:
        return len(self.magic) + NONCE_SIZE

    def start(self, nonce: bytes) -> bytes:
        """The bytes before the first record of a file with ``nonce``."""
        return self.magic + nonce

    def encode(self, key: DataSigner, nonce: bytes, index: int, values: Header, parts: Sequence[bytes]) -> bytes:
        """The signed bytes of the ``index``-th record (header ``values``, variable ``parts``)."""
        if tuple(self.framing(values) or ()) != tuple(map(len, parts)):
            raise ValueError(f"a {self.name} record whose header does not frame its fields")
        unsigned = self.header.pack(*values) + b"".join(parts)
        return unsigned + key.tag(self.domain + nonce + self.index.pack(index), unsigned)


@dataclass
class Reading:
    """How reading a file went: verified records, records rejected alone,
    and why it stopped early ("" when it read the whole file)."""

    records: int = 0  #: verified records (taken or rejected)
    rejected: list[str] = field(default_factory=list)  #: why each rejected record was
    damage: str = ""
    #: the file ends inside a record: a process died writing it
    torn: bool = False


def read_records(fmt: RecordFormat, data: bytes, key: DataSigner, accept: Accept) -> Reading:
    """Hand every verified record of a file's bytes (magic included) to
    ``accept``, in order (see the module). Never raises but what ``accept``
    raises beyond :class:`BadRecord`, and always ends."""
    reading = Reading()
    if not data.startswith(fmt.magic) or len(data) < fmt.file_header_size:
        reading.damage = f"no {fmt.name} header"
        return reading
    view = memoryview(data)
    nonce = view[len(fmt.magic) : fmt.file_header_size]
    offset, size, header = fmt.file_header_size, len(data), fmt.header
    while offset < size:
        if size - offset < header.size:
            reading.damage, reading.torn = f"truncated record at byte {offset}", True
            break
        values = header.unpack_from(data, offset)
        lengths = fmt.framing(values)
        if lengths is None or any(length < 0 for length in lengths):
            reading.damage = f"invalid record header at byte {offset}"
            break
        parts, start = [], offset + header.size
        for length in lengths:
            parts.append(view[start : start + length])
            start += length
        if start + TAG_SIZE > size:
            reading.damage = f"record at byte {offset} is cut ({start + TAG_SIZE - size} bytes missing)"
            reading.torn = True
            break
        expected = key.tag(fmt.domain, nonce, fmt.index.pack(reading.records), view[offset : offset + header.size],
                           *parts)
        if not hmac.compare_digest(expected, view[start : start + TAG_SIZE]):
            reading.damage = f"record at byte {offset} does not verify with the {fmt.key_name} (damaged or forged)"
            break
        reading.records += 1
        offset = start + TAG_SIZE
        try:
            accept(values, parts)
        except BadRecord as exc:
            reading.rejected.append(f"record {reading.records - 1}: {exc}")
    return reading


# -- reading files ----------------------------------------------------------------------------


def read_private(path: Path) -> bytes:
    """The bytes of a regular file of this user that no one else can write:
    opened without following a link and without blocking (a FIFO planted in
    its place is refused, never waited on)."""
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError as exc:
        raise RecordFileError(f"{path.name} cannot be opened: {exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RecordFileError(f"{path.name} is not a regular file")
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise RecordFileError(f"{path.name} is not owned by this user or is writable by others")
        return fh.read()


# -- writing ------------------------------------------------------------------------------------


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data``: a short write is continued; a write that
    stores nothing raises ``OSError(ENOSPC)`` (as the next one would)."""
    written = os.write(fd, data)
    if written == len(data):
        return
    view = memoryview(data)[max(written, 0) :]
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no byte written (the filesystem is full)")
        view = view[written:]


def append_all_or_nothing(fd: int, data: bytes, end: int | None = None) -> None:
    """Append ``data`` to the ``O_APPEND`` file ``fd`` whole, or raise with
    the file cut back to its size before, ``end`` (default: asked with
    ``lseek``), so that no torn record is left."""
    if end is None:
        end = os.lseek(fd, 0, os.SEEK_END)
    try:
        write_all(fd, data)
    except OSError:
        try:
            os.ftruncate(fd, end)
        except OSError:
            pass  # the reader takes a torn end for what it is
        raise


def write_durably(path: Path, data: bytes | Iterable[bytes], *, sync: bool = True, sync_dir: bool = True) -> None:
    """Write ``data`` (bytes, or chunks written as they come: a large file
    is never joined in memory) as ``path`` all or nothing: a temporary file
    of the same directory (mode 0600), every byte checked, fsync, rename,
    fsync of the directory (``sync=False``: no fsync, the file survives the
    death of the process as the page cache does; ``sync_dir=False``: the
    caller fsyncs the directory itself, later); the temporary file is
    removed if anything fails, and the error raised."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".writing-")
    try:
        try:
            _write_chunks(fd, [data] if isinstance(data, bytes) else data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync and sync_dir:
        fsync_dir(path.parent)


def _write_chunks(fd: int, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` in writes of about :data:`WRITE_BATCH` bytes."""
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= WRITE_BATCH:
            write_all(fd, b"".join(batch))
            batch, size = [], 0
    if batch:
        write_all(fd, b"".join(batch))


def fsync_dir(directory: Path) -> None:
    """fsync a directory (a rename in it is durable); errors are ignored."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
