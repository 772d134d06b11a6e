"""Keys that sign data kept on disk longer than one uWSGI instance.

Envelopes in the queues are signed with the instance key, which changes at
every start. Saved offloads (backlog files) and spooled ``@spool`` calls
outlive the instance, so they are signed with a *data key* that lives next to
the data it protects: the file :data:`KEY_NAME` in the backlog directory or in
the spool directory, created on first use with mode 0600 (atomically: every
process of every instance reads the same bytes) and checked at every read (a
regular file, not a symlink, owned by this user, no group or other bits, 32
bytes). Whoever deletes the key makes the data signed with it unreadable
(refused with a log line, never unpickled); whoever can read it can forge
data, exactly like the instance key.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .errors import MulesError

#: the name of the key file in a backlog or spool directory
KEY_NAME = ".uwsgi-mules-data.key"
KEY_SIZE = 32
TAG_SIZE = 16


class DataKeyError(MulesError, OSError):
    """The data key file cannot be trusted (owner, mode, type, size) or created."""


def data_key(directory: Path) -> bytes:
    """The data key of ``directory``, created when missing.

    :raises DataKeyError: the key file or the directory cannot be trusted.
    """
    info = os.stat(directory)
    if info.st_uid != os.getuid():
        raise DataKeyError(f"{directory} belongs to uid {info.st_uid}, not to this user ({os.getuid()})")
    if info.st_mode & 0o022:
        raise DataKeyError(f"{directory} is writable by other users (mode {oct(info.st_mode & 0o777)})")
    path = directory / KEY_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    tmp = directory / f".{KEY_NAME}-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, os.urandom(KEY_SIZE))
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(tmp, path)  # atomic, never replaces: the first process wins
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataKeyError(f"cannot open the data key {path}: {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise DataKeyError(f"{path} must be a regular file of this user with mode 0600")
        key = os.read(fd, KEY_SIZE + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_SIZE:
        raise DataKeyError(f"{path} holds {len(key)} bytes, not a {KEY_SIZE} bytes key")
    return key


class DataSigner:
    """Tags bytes with a data key (keyed BLAKE2b, 16 bytes)."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a data key is at least 16 bytes")
        self._mac = hashlib.blake2b(key=key, digest_size=TAG_SIZE)

    def tag(self, *parts: bytes | memoryview) -> bytes:
        """The tag of the concatenation of ``parts``."""
        mac = self._mac.copy()
        for part in parts:
            mac.update(part)
        return mac.digest()
