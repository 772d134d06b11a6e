"""Keys that sign data kept on disk longer than one uWSGI instance.

Envelopes in the queues are signed with the instance key, which changes at
every start. Saved offloads (backlog files) and spooled ``@spool`` calls
outlive the instance, so they are signed with a *data key* that lives next to
the data it protects: the file :data:`KEY_NAME` in the backlog directory or in
the spool directory, created on first use with mode 0600 (atomically: every
process of every instance reads the same bytes) and checked at every read (a
regular file, not a symlink, owned by this user, no group or other bits, 32
bytes): the same creation and checks as the instance key's
(:mod:`uwsgi_mules.instance`). Whoever deletes the key makes the data signed
with it unreadable (refused with a log line, never unpickled); whoever can
read it can forge data, exactly like the instance key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .envelope import KEY_SIZE
from .instance import check_owned_dir, create_key_file, read_key_file

#: the name of the key file in a backlog or spool directory
KEY_NAME = ".uwsgi-mules-data.key"
TAG_SIZE = 16

__all__ = ["KEY_NAME", "KEY_SIZE", "TAG_SIZE", "DataSigner", "data_key"]


def data_key(directory: Path) -> bytes:
    """The data key of ``directory``, created when missing.

    The directory is opened once and checked through its descriptor (a
    directory of this user that no other user can write:
    :func:`~uwsgi_mules.instance.check_owned_dir`); the key file is read and
    created relative to it, as the instance key is
    (:func:`~uwsgi_mules.instance.read_key_file`).

    :raises InsecureDirectory: (an ``OSError``) the key file or the directory
        cannot be trusted.
    """
    directory = Path(directory)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        check_owned_dir(directory, os.fstat(dir_fd))
        try:
            return read_key_file(directory, dir_fd, KEY_NAME)
        except FileNotFoundError:
            return create_key_file(directory, dir_fd, KEY_NAME)
    finally:
        os.close(dir_fd)


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
