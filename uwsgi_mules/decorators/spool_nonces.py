"""Signed spool tasks run once: the nonce of each is recorded as used.

``@spool(pass_arguments=True)`` writes a random nonce (``ud_spool_nonce``)
and its spool time (``ud_spool_time``) into every task, both covered by the
task's signature (:mod:`.spool_signing`). Before the spooler calls the
function, :meth:`NonceStore.admit` records the nonce with the name of the
task's spool file:

* a nonce never seen runs, and is recorded;
* the same spool file seen again runs again (uWSGI runs a file again after
  ``SPOOL_RETRY``, an exception, or for ``@spoolforever``);
* a nonce recorded for another file, or marked done (the function returned
  ``SPOOL_OK``, so uWSGI deleted the file) is a replayed copy: refused.

Where: one small file per nonce in ``.uwsgi-mules-spool-nonces/`` of the
first spool directory, next to the data key (uWSGI's spooler only reads
``uwsgi_spoolfile_on_*`` entries, so it ignores them). They outlive restarts
as the spool files and the key do; several spooler processes share them
(a nonce is created with ``link()``, which exactly one of two racing
processes wins). Bounded: a record not used for :data:`REPLAY_WINDOW`
seconds (30 days) is deleted, and a task whose signed spool time (or ``at``,
when later) is older than that is refused, since its record may be gone.
A task that waits in the spool directory for more than 30 days (a spooler
down that long) is therefore refused with a log line, not run. On the fake
(tasks in memory) the records are in memory too.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import weakref
from pathlib import Path

from ..backends.base import Backend
from ..instance import secure_dir

NONCE_KEY = "ud_spool_nonce"
TIME_KEY = "ud_spool_time"
NONCE_DIR = ".uwsgi-mules-spool-nonces"
#: seconds a nonce record is kept after its last use, and the oldest spool time accepted
REPLAY_WINDOW = 30 * 86400
#: how often a process looks for records to prune (seconds)
PRUNE_EVERY = 3600
#: the content of the record of a task that finished (its file was deleted)
DONE = b"\x00done"
_NONCE = re.compile(r"[0-9a-f]{32}")


def new_nonce() -> str:
    """A fresh nonce for a task (128 random bits, hex)."""
    return os.urandom(16).hex()


class NonceStore:
    """The used nonces of signed spool tasks: files in ``directory`` (None: in memory)."""

    def __init__(self, directory: Path | None, window: float = REPLAY_WINDOW) -> None:
        self.directory = directory
        self.window = window
        self._memory: dict[str, bytes] = {}
        self._pruned_at = 0.0

    def admit(self, nonce: str, task_name: str, spooled_at: float, now: float) -> str:
        """"" when the task of spool file ``task_name`` may run (its nonce is
        now recorded for it); else why not (a replay, or too old to tell)."""
        if not _NONCE.fullmatch(nonce):
            return f"its {NONCE_KEY} is not a nonce of uwsgi-mules"
        self._prune(now)
        name = task_name.encode("utf-8", "surrogateescape")
        seen = self._read(nonce)
        if seen is None:
            if now - spooled_at > self.window:
                return (f"it was spooled {(now - spooled_at) / 86400:.1f} days ago, beyond the "
                        f"{self.window / 86400:g} days its run is remembered: it may be a replayed copy")
            if self._create(nonce, name):
                return ""
            seen = self._read(nonce)  # another process recorded it first
        if seen == DONE:
            return "it already ran (a replayed copy of a finished task)"
        if seen != name:
            return "its nonce belongs to another spool file (a replayed copy)"
        self._touch(nonce)
        return ""

    def finished(self, nonce: str) -> None:
        """The task of ``nonce`` is done (its spool file is deleted): any copy is refused."""
        if self.directory is None:
            self._memory[nonce] = DONE
            return
        self._write(nonce, DONE, replace=True)

    # -- storage ----------------------------------------------------------------------------

    def _read(self, nonce: str) -> bytes | None:
        if self.directory is None:
            return self._memory.get(nonce)
        try:
            with open(self.directory / nonce, "rb") as fh:
                return fh.read(4096)
        except FileNotFoundError:
            return None

    def _create(self, nonce: str, name: bytes) -> bool:
        if self.directory is None:
            return self._memory.setdefault(nonce, name) is name
        return self._write(nonce, name, replace=False)

    def _write(self, nonce: str, content: bytes, *, replace: bool) -> bool:
        assert self.directory is not None
        secure_dir(self.directory)
        temporary = self.directory / f"{nonce}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if os.write(fd, content) != len(content):
                raise OSError(f"short write of the spool nonce record {temporary}")
        finally:
            os.close(fd)
        try:
            if replace:
                os.replace(temporary, self.directory / nonce)
                return True
            os.link(temporary, self.directory / nonce)  # fails when another process recorded it first
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    def _touch(self, nonce: str) -> None:
        if self.directory is not None:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.directory / nonce)

    def _prune(self, now: float) -> None:
        """Delete the records not used for the window (at most once per :data:`PRUNE_EVERY`)."""
        if self.directory is None or now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        oldest = time.time() - self.window
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < oldest:
                        os.unlink(entry.path)


#: the nonce store of each backend
_stores: weakref.WeakKeyDictionary[Backend, NonceStore] = weakref.WeakKeyDictionary()


def nonce_store(backend: Backend) -> NonceStore:
    """The used nonces of ``backend``'s signed spool tasks: in its first spool
    directory, or in memory when the spooler keeps its tasks in memory (the fake)."""
    store = _stores.get(backend)
    if store is None:
        directory = backend.spool_key_dir()
        # made absolute here: decorating creates it in the master, before uWSGI's spooler changes its directory
        absolute = Path(os.path.abspath(directory / NONCE_DIR)) if directory is not None else None
        store = _stores[backend] = NonceStore(absolute)
    return store


def reset_nonce_stores() -> None:
    """Forget the stores (tests)."""
    _stores.clear()
