"""Offloads saved to disk at a reload or a stop, replayed by the next mules.

A backlog file holds verified envelope bodies with their targets. It is
written durably (temporary file, fsync, rename, fsync of the directory) into
a directory that belongs to the instance's user and that no other user can
write (files are 0600): that ownership is what makes the bodies trusted on
replay, where they are signed again with the then current instance key.

A file is claimed by renaming it (``*.claimed-<pid>``), so exactly one
process replays it; the claim of a process that died is taken over.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ...envelope import WireTarget
from ...instance import secure_dir

FILE_MAGIC = b"UWSGIMULES-BACKLOG-1\n"
SUFFIX = ".backlog"
#: written by the C plugin's master: raw queued messages and the key that signed them
QUEUED_MAGIC = b"UWSGIMULES-QUEUED-1\n"
QUEUED_SUFFIX = ".queued"
KEY_SIZE = 32
CLAIMED = ".claimed-"
_KIND_MULE = 0
_KIND_FARM = 1
_ENTRY = struct.Struct("!BiI")  # kind, mule id or farm-name length, body length

Entry = tuple[WireTarget, bytes]


class BacklogError(RuntimeError):
    """A backlog file that is not ours or is damaged."""


def save(directory: Path, entries: Iterable[Entry], *, label: str = "") -> Path | None:
    """Write ``entries`` durably into a new file of ``directory``; None if there were none."""
    chunks = [FILE_MAGIC]
    count = 0
    for target, body in entries:
        if isinstance(target, bytes):
            chunks.append(_ENTRY.pack(_KIND_FARM, len(target), len(body)) + target)
        else:
            chunks.append(_ENTRY.pack(_KIND_MULE, int(target), len(body)))
        chunks.append(bytes(body))
        count += 1
    if not count:
        return None
    secure_dir(directory)
    name = f"{time.time_ns():020d}-{os.getpid()}-{label or 'mule'}{SUFFIX}"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".writing-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(chunks))
            fh.flush()
            os.fsync(fh.fileno())
        final = directory / name
        os.rename(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return final


def load(path: Path) -> list[Entry]:
    """The entries of a backlog file (verified bodies); :class:`BacklogError`
    if it is not trustworthy."""
    data = _read_private(path)
    if not data.startswith(FILE_MAGIC):
        raise BacklogError(f"{path} is not a backlog file")
    return _entries(path, data, len(FILE_MAGIC))


def load_queued(path: Path) -> tuple[bytes, list[Entry]]:
    """``(key, entries)`` of a file the plugin's master wrote: whole messages,
    NOT verified yet, and the key that must verify them."""
    data = _read_private(path)
    if not data.startswith(QUEUED_MAGIC) or len(data) < len(QUEUED_MAGIC) + KEY_SIZE:
        raise BacklogError(f"{path} is not a queued-messages file")
    start = len(QUEUED_MAGIC)
    return data[start : start + KEY_SIZE], _entries(path, data, start + KEY_SIZE)


def _read_private(path: Path) -> bytes:
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise BacklogError(f"{path} is not owned by this user or is writable by others")
        return fh.read()


def _entries(path: Path, data: bytes, offset: int) -> list[Entry]:
    entries: list[Entry] = []
    while offset < len(data):
        try:
            kind, value, length = _ENTRY.unpack_from(data, offset)
        except struct.error as exc:
            raise BacklogError(f"{path} is truncated at byte {offset}") from exc
        offset += _ENTRY.size
        target: WireTarget
        if kind == _KIND_FARM:
            target = data[offset : offset + value]
            offset += value
        else:
            target = value
        body = data[offset : offset + length]
        if len(body) != length:
            raise BacklogError(f"{path} is truncated at byte {offset}")
        offset += length
        entries.append((target, body))
    return entries


def claim(directory: Path) -> list[Path]:
    """Claim every unclaimed file of ``directory`` (and files claimed by dead
    processes) for this process, oldest first."""
    if not directory.is_dir():
        return []
    secure_dir(directory)
    mine = f"{CLAIMED}{os.getpid()}"
    claimed = []
    for path in sorted(directory.iterdir()):
        name = path.name
        if name.endswith(SUFFIX) or name.endswith(QUEUED_SUFFIX):
            base = name
        elif CLAIMED in name and not _alive(name.rsplit(CLAIMED, 1)[1]):
            base = name.rsplit(CLAIMED, 1)[0]
        else:
            continue
        target = directory / (base + mine)
        try:
            os.rename(path, target)
        except FileNotFoundError:  # another process claimed it first
            continue
        claimed.append(target)
    return claimed


def _alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
