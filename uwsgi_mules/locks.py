"""uWSGI user locks as context managers.

``uwsgi.lock(n)`` / ``uwsgi.unlock(n)`` are process-shared mutexes: lock 0
always exists, ``--locks N`` adds 1..N. They are not re-entrant (locking
twice in one thread deadlocks) and the spooler may not use them.

>>> from uwsgi_mules.locks import Lock
>>> with Lock(1):
...     update_shared_file()
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from .backends.selection import current_backend
from .errors import MulesError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11


class LockError(MulesError, RuntimeError):
    """A lock that does not exist, is already held here, or used by the spooler."""


_held = threading.local()


def _held_set() -> set[int]:
    held = getattr(_held, "numbers", None)
    if held is None:
        held = _held.numbers = set()
    return held


class Lock:
    """uWSGI user lock ``number`` (0..N with ``--locks N``)."""

    __slots__ = ("number",)

    def __init__(self, number: int = 0) -> None:
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise LockError(f"lock numbers are ints >= 0, got {number!r}")
        self.number = number

    def __repr__(self) -> str:
        return f"Lock({self.number})"

    def _check(self) -> None:
        backend = current_backend()
        if backend.i_am_the_spooler():
            raise LockError("the spooler cannot use uWSGI locks (uWSGI raises there)")
        count = backend.lock_count()
        if count is not None and self.number > count:
            hint = f"locks 0..{count}" if count else "only lock 0"
            raise LockError(f"lock {self.number} does not exist: this uWSGI has {hint} (set --locks {self.number})")

    def acquire(self) -> None:
        """Block until the lock is ours."""
        self._check()
        held = _held_set()
        if self.number in held:
            raise LockError(f"lock {self.number} is already held by this thread (uWSGI locks are not re-entrant)")
        current_backend().lock(self.number)
        held.add(self.number)

    def release(self) -> None:
        """Release the lock (it must be held by this thread)."""
        held = _held_set()
        if self.number not in held:
            raise LockError(f"lock {self.number} is not held by this thread")
        current_backend().unlock(self.number)
        held.discard(self.number)

    @property
    def locked(self) -> bool:
        """Whether any process holds the lock now."""
        self._check()
        return current_backend().is_locked(self.number)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def lock(number: int = 0) -> Lock:
    """``with lock(1): ...``"""
    return Lock(number)
