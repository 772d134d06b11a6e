"""Offloads saved to disk at a reload or a stop, replayed by the next mules.

A backlog file (``*.backlog``) is a record file of the shared codec
(:mod:`.records`: magic, file nonce, signed records; framing, tag and the
checks of reading are described there) whose records are::

    kind (1 byte: 0 mule, 1 farm) | task path length (2) | farm name length (2)
    | mule id (4) | body length (4) | task path | farm name | body | tag (16)

all integers unsigned, big-endian; the tag covers the file nonce and the
entry's index (4 bytes). It is signed with the *data key* of the directory
(:mod:`uwsgi_mules.datakey`: a key file next to the backlog files, which
outlives the instance). A file is written durably
(:func:`.records.write_durably`) into a directory that belongs to the
instance's user and that no other user can write (files are 0600).

Reading never trusts a field (bodies are never unpickled here; the task path
is readable without unpickling): it stops at the first entry that is cut or
does not verify, and the entries before it (the intact prefix) are returned
with the reason, the rest is not trusted; a verified entry whose fields are
out of range is left out alone (the file then counts as damaged: it is moved
aside once its other entries are replayed).

The C plugin's master writes ``*.queued`` files at its exit: whole envelopes
signed with the instance key, which the file carries. Such a key is trusted
only when a mule of that instance recorded it in the directory
(:func:`trust_instance_key`).

A file is claimed by renaming it (``*.claimed-<pid>``), so exactly one
process replays it; the claim of a process that died is taken over, and
:class:`Progress` (``.progress-<file>``) tells how many of its entries were
already handled, so a replay cut by a crash goes on where it stopped. A file
that is damaged is moved aside once (``*.corrupt``), after its intact prefix
was replayed; entries that can never be sent are parked (``*.parked``, never
claimed: rename one to ``*.backlog`` to replay it).
"""

from __future__ import annotations

import hmac
import os
import stat
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...datakey import TAG_SIZE, DataSigner, data_key
from ...envelope import WireTarget
from ...instance import process_alive, secure_dir
from .records import (
    NONCE_SIZE,
    BadRecord,
    Header,
    RecordFileError,
    RecordFormat,
    read_private,
    read_records,
    write_all,
    write_durably,
)

FILE_MAGIC = b"UWSGIMULES-BACKLOG-2\n"
#: the unsigned format of older versions: refused (moved aside), never replayed
OLD_MAGIC = b"UWSGIMULES-BACKLOG-1\n"
SUFFIX = ".backlog"
#: written by the C plugin's master: raw queued messages and the key that signed them
QUEUED_MAGIC = b"UWSGIMULES-QUEUED-1\n"
QUEUED_SUFFIX = ".queued"
KEY_SIZE = 32
CLAIMED = ".claimed-"
CORRUPT_SUFFIX = ".corrupt"
PARKED_SUFFIX = ".parked"
PROGRESS_PREFIX = ".progress-"
#: MACs (with the data key) of the instance keys mules of this directory used
INSTANCE_KEYS = ".uwsgi-mules-instance-keys"
KIND_MULE = 0
KIND_FARM = 1
MAX_PATH = 4096
MAX_FARM_NAME = 4096
MAX_MULE_ID = 1 << 20
_HEADER = struct.Struct("!BHHII")  # kind, path length, farm name length, mule id, body length
#: entries of a ``.queued`` file (the plugin's layout): kind, mule id or farm-name length, message length
_QUEUED = struct.Struct("!BiI")
_PROGRESS = struct.Struct("!Q")


def _framing(values: Header) -> Sequence[int]:
    _, path_len, farm_len, _, body_len = values
    return path_len, farm_len, body_len


#: backlog files in the shared record codec (their byte layout is unchanged since version 2)
FORMAT = RecordFormat("backlog file", FILE_MAGIC, _HEADER, struct.Struct("!I"), _framing)
#: bytes before the first entry of a backlog file
FILE_HEADER_SIZE = FORMAT.file_header_size


@dataclass(frozen=True)
class SavedOffload:
    """One offload kept on disk: where it was sent, its verified envelope body
    (pickled, not signed), and its task path ("" when unknown)."""

    target: WireTarget
    body: bytes
    path: str = ""


@dataclass
class LoadedFile:
    """What a backlog file holds: its intact entries, and why reading stopped
    early ("" when the whole file was read)."""

    entries: list[SavedOffload] = field(default_factory=list)
    damage: str = ""


#: a backlog file that is not ours or cannot be trusted at all (the codec's error)
BacklogError = RecordFileError


# -- writing ------------------------------------------------------------------------------


def encode_entries(signer: DataSigner, nonce: bytes, entries: Iterable[SavedOffload]) -> list[bytes]:
    """The signed bytes of ``entries`` of the file with ``nonce`` (without the file header)."""
    chunks = []
    for index, entry in enumerate(entries):
        path = entry.path.encode("utf-8", "surrogateescape")
        target = entry.target
        if isinstance(target, bytes):
            kind, farm, mule = KIND_FARM, target, 0
        else:
            kind, farm, mule = KIND_MULE, b"", int(target)
        values = (kind, len(path), len(farm), mule, len(entry.body))
        if _out_of_range(values):
            raise ValueError(f"cannot save an offload of {entry.path!r} to {target!r}: {_out_of_range(values)}")
        chunks.append(FORMAT.encode(signer, nonce, index, values, (path, farm, entry.body)))
    return chunks


def _out_of_range(values: Header) -> str:
    """Why an entry's header values are out of range ("" when they are not)."""
    kind, path_len, farm_len, mule, _ = values
    if kind not in (KIND_MULE, KIND_FARM):
        return f"unknown kind {kind}"
    if path_len > MAX_PATH or farm_len > MAX_FARM_NAME or not 0 <= mule <= MAX_MULE_ID:
        return "a field is out of range"
    if (kind == KIND_FARM) != (farm_len > 0) or (kind == KIND_FARM and mule):
        return "a farm entry needs a farm name and no mule id"
    return ""


def save(directory: Path, entries: Iterable[SavedOffload], *, label: str = "", suffix: str = SUFFIX) -> Path | None:
    """Write ``entries`` durably into a new file of ``directory``; None if there were none."""
    secure_dir(directory)
    nonce = os.urandom(NONCE_SIZE)
    chunks = encode_entries(DataSigner(data_key(directory)), nonce, entries)
    if not chunks:
        return None
    final = directory / f"{time.time_ns():020d}-{os.getpid()}-{label or 'mule'}{suffix}"
    write_durably(final, FILE_MAGIC + nonce + b"".join(chunks))
    return final


# -- reading ------------------------------------------------------------------------------


def parse(data: bytes, signer: DataSigner) -> LoadedFile:
    """The intact, verified entries of a backlog file's bytes (magic
    included). Never raises on any input and always ends (see :mod:`.records`)."""
    loaded = LoadedFile()

    def accept(values: Header, parts: list[memoryview]) -> None:
        why = _out_of_range(values)
        if why:
            raise BadRecord(why)
        path, farm, body = parts
        target: WireTarget = bytes(farm) if values[0] == KIND_FARM else values[3]
        loaded.entries.append(SavedOffload(target, bytes(body), bytes(path).decode("utf-8", "surrogateescape")))

    reading = read_records(FORMAT, data, signer, accept)
    loaded.damage = reading.damage.replace("record", "entry")
    if reading.rejected:
        rejected = f"{len(reading.rejected)} entrie(s) rejected alone ({reading.rejected[0]})"
        loaded.damage = f"{loaded.damage}; {rejected}" if loaded.damage else rejected
    return loaded


def load(path: Path) -> LoadedFile:
    """The verified entries of a backlog file (an intact prefix when it is
    damaged); :class:`BacklogError` when nothing of it can be trusted."""
    data = read_private(path)
    if data.startswith(OLD_MAGIC):
        raise BacklogError(f"{path.name} is an unsigned backlog file of an older uwsgi-mules version")
    if not data.startswith(FILE_MAGIC):
        raise BacklogError(f"{path.name} is not a backlog file")
    return parse(data, DataSigner(data_key(path.parent)))


def parse_queued(data: bytes, offset: int) -> LoadedFile:
    """The whole messages of a ``.queued`` file's bytes (NOT verified), each
    as a :class:`SavedOffload` whose body is the message. Never raises on any
    input and always ends."""
    loaded = LoadedFile()
    size = len(data)
    while offset < size:
        if size - offset < _QUEUED.size:
            loaded.damage = f"truncated entry header at byte {offset}"
            break
        kind, value, length = _QUEUED.unpack_from(data, offset)
        farm_len = value if kind == KIND_FARM else 0
        if kind not in (KIND_MULE, KIND_FARM) or not 0 <= value <= (MAX_FARM_NAME if farm_len else MAX_MULE_ID) or (
            kind == KIND_FARM and not value
        ):
            loaded.damage = f"invalid entry header at byte {offset}"
            break
        start = offset + _QUEUED.size
        end = start + farm_len + length
        if end > size:
            loaded.damage = f"entry at byte {offset} is cut ({end - size} bytes missing)"
            break
        target: WireTarget = data[start : start + farm_len] if kind == KIND_FARM else value
        loaded.entries.append(SavedOffload(target, data[start + farm_len : end]))
        offset = end
    return loaded


def load_queued(path: Path) -> tuple[bytes, LoadedFile]:
    """``(key, loaded)`` of a file the plugin's master wrote: whole messages,
    NOT verified yet, and the key that must verify them (see
    :func:`instance_key_trusted`)."""
    data = read_private(path)
    if not data.startswith(QUEUED_MAGIC) or len(data) < len(QUEUED_MAGIC) + KEY_SIZE:
        raise BacklogError(f"{path.name} is not a queued-messages file")
    start = len(QUEUED_MAGIC)
    return data[start : start + KEY_SIZE], parse_queued(data, start + KEY_SIZE)


# -- instance keys of the plugin's files ----------------------------------------------------


def trust_instance_key(directory: Path, instance_key: bytes) -> None:
    """Record (a MAC of) ``instance_key`` as used by mules of ``directory``'s
    instance, so that the plugin's ``.queued`` files signed with it are replayed."""
    secure_dir(directory)
    mark = DataSigner(data_key(directory)).tag(b"instance-key:", instance_key)
    path = directory / INSTANCE_KEYS
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise BacklogError(f"{path} must be a regular file of this user with mode 0600")
        if not _has_mark(os.pread(fd, info.st_size, 0), mark):
            write_all(fd, mark)  # O_APPEND: one write of 16 bytes
    finally:
        os.close(fd)


def instance_key_trusted(directory: Path, instance_key: bytes) -> bool:
    """Whether a mule of ``directory`` recorded ``instance_key`` (:func:`trust_instance_key`)."""
    mark = DataSigner(data_key(directory)).tag(b"instance-key:", instance_key)
    try:
        known = read_private(directory / INSTANCE_KEYS)
    except BacklogError:
        return False
    return _has_mark(known, mark)


def _has_mark(known: bytes, mark: bytes) -> bool:
    """Whether ``mark`` is one of the tags of ``known`` (each compared in constant time)."""
    found = False
    for i in range(0, len(known) - TAG_SIZE + 1, TAG_SIZE):
        found |= hmac.compare_digest(known[i : i + TAG_SIZE], mark)
    return found


# -- claiming, progress, setting aside --------------------------------------------------------


def claim(directory: Path) -> list[Path]:
    """Claim every unclaimed file of ``directory`` (and files claimed by dead
    processes) for this process, oldest first."""
    if not directory.is_dir():
        return []
    secure_dir(directory)
    mine = f"{CLAIMED}{os.getpid()}"
    claimed = []
    names = sorted(p.name for p in directory.iterdir())
    for name in names:
        if name.startswith("."):  # keys, progress records, files being written
            continue
        if name.endswith((SUFFIX, QUEUED_SUFFIX)):
            base = name
        elif CLAIMED in name and not _alive(name.rsplit(CLAIMED, 1)[1]):
            base = name.rsplit(CLAIMED, 1)[0]
        else:
            continue
        target = directory / (base + mine)
        try:
            os.rename(directory / name, target)
        except FileNotFoundError:  # another process claimed it first
            continue
        claimed.append(target)
    _remove_orphan_progress(directory, names)
    return claimed


def base_name(path: Path) -> str:
    """The name a claimed file had before it was claimed."""
    return path.name.rsplit(CLAIMED, 1)[0]


def set_aside(path: Path) -> Path:
    """Move a claimed file aside for good (``<name>.corrupt``: never claimed again)."""
    final = path.with_name(base_name(path) + CORRUPT_SUFFIX)
    os.rename(path, final)
    return final


def _remove_orphan_progress(directory: Path, names: list[str]) -> None:
    bases = {n.rsplit(CLAIMED, 1)[0] for n in names}
    for name in names:
        if name.startswith(PROGRESS_PREFIX) and name[len(PROGRESS_PREFIX) :] not in bases:
            try:
                os.unlink(directory / name)
            except OSError:
                pass


class Progress:
    """How many entries of a claimed file were handled (sent or parked),
    kept in ``.progress-<file>`` next to it: written after each entry (no
    fsync: it survives the death of the process, as the page cache does)."""

    def __init__(self, claimed: Path) -> None:
        self.path = claimed.with_name(PROGRESS_PREFIX + base_name(claimed))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        info = os.fstat(self._fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            os.close(self._fd)
            raise BacklogError(f"{self.path.name} must be a regular file of this user with mode 0600")
        raw = os.pread(self._fd, _PROGRESS.size, 0)
        #: entries of the file handled so far (by this process and the ones before)
        self.done = _PROGRESS.unpack(raw)[0] if len(raw) == _PROGRESS.size else 0

    def advance(self, done: int) -> None:
        if os.pwrite(self._fd, _PROGRESS.pack(done), 0) != _PROGRESS.size:
            raise OSError(f"{self.path.name}: short write")
        self.done = done

    def remove(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        os.close(self._fd)


def _alive(pid_text: str) -> bool:
    return pid_text.isdigit() and process_alive(int(pid_text))
