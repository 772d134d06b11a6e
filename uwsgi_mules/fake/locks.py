"""User locks of the fake (``uwsgi.lock(n)`` / ``uwsgi.unlock(n)``).

Like uWSGI: locks ``0..count`` exist (``--locks N`` adds 1..N to lock 0),
other numbers raise ``ValueError("Invalid lock number")``, the spooler may
not lock. Locks exclude each other across threads (the fake's processes).
Where real uWSGI would deadlock, the fake raises :class:`LockMisuse`:
locking a lock the same thread already holds, or unlocking a free lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class LockMisuse(RuntimeError):
    """A lock was used in a way that deadlocks or corrupts real uWSGI."""


class _UserLock:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None


class FakeLocks:
    """Locks ``0..count``."""

    def __init__(self, count: int = 0) -> None:
        self.count = 0
        self._locks: list[_UserLock] = []
        self.configure(count)

    def configure(self, count: int) -> None:
        """Set the number of extra locks (the ``locks`` option)."""
        if count < 0:
            raise ValueError("locks must be >= 0")
        self.count = count
        while len(self._locks) < count + 1:
            self._locks.append(_UserLock())
        del self._locks[count + 1 :]

    def _get(self, number: int) -> _UserLock:
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"'{type(number).__name__}' object cannot be interpreted as an integer")
        if number < 0 or number > self.count:
            raise ValueError("Invalid lock number")
        return self._locks[number]

    def lock(self, number: int, check_stop: Callable[[], None] | None = None) -> None:
        user_lock = self._get(number)
        me = threading.get_ident()
        if user_lock.owner == me:
            raise LockMisuse(
                f"lock {number} is already held by this thread: uWSGI locks are not re-entrant "
                "and real uWSGI would deadlock here"
            )
        while not user_lock.lock.acquire(timeout=0.05):
            if check_stop is not None:
                check_stop()
        user_lock.owner = me

    def unlock(self, number: int) -> None:
        user_lock = self._get(number)
        if not user_lock.lock.locked():
            raise LockMisuse(f"unlock({number}) of a lock that is not held")
        user_lock.owner = None
        user_lock.lock.release()

    def is_locked(self, number: int) -> bool:
        return self._get(number).lock.locked()
