"""The periodic scheduler as an idle duty of the mule loop (and of the fake's clock).

:func:`periodic_duty` is registered with :mod:`uwsgi_mules.idle_duties`
when :mod:`uwsgi_mules.periodic` is imported. On real uWSGI it runs in
every programmed mule; the one holding the lock of
:mod:`uwsgi_mules.periodic.leader` schedules, the others try to take the
lock about once a second. On the fake there is one process: it schedules,
on the virtual clock, with its state in memory, or in the fake's
``backlog_dir`` when it has one (so a new fake with the same directory
catches up like a restarted instance).
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..instance import BACKLOG_DIR_ENV
from .entries import entries
from .leader import SchedulerLock
from .lease import configured_lease
from .scheduler import Scheduler
from .state import StateFile

#: a mule without the lock tries to take it this often (seconds)
LOCK_RETRY = 1.0

__all__ = ["LOCK_RETRY", "PeriodicDuty", "periodic_duty", "state_dir"]


def state_dir(backend: Backend) -> Path | None:
    """Where the state and the lock live: the backlog directory when one is
    set (it outlives the instance), else the runtime directory (None on a
    fake without a backlog directory: in memory)."""
    configured = backend.getenv(BACKLOG_DIR_ENV)
    if configured:
        return Path(configured)
    return backend.runtime_dir()


class PeriodicDuty:
    """One process's scheduling: the lock (real uWSGI only), then the scheduler's ticks."""

    def __init__(self, backend: Backend) -> None:
        directory = state_dir(backend)
        self.lock = SchedulerLock(directory) if backend.is_real and directory is not None else None
        self.scheduler = Scheduler(backend, StateFile(directory, backend.log), configured_lease(backend.getenv))
        self._next: float | None = None
        self._failures = 0
        self._mutex = threading.Lock()  # the fake's advance() and its mule threads may both tick

    def __call__(self, now: float) -> float | None:
        with self._mutex:
            if self._next is not None and now < self._next:
                return self._next
            try:
                self._next = self._schedule(now)
            except Exception as exc:  # noqa: BLE001 - a scheduler failure must not stop the mule: said once, tried less often
                self._failures += 1
                if self._failures == 1 or self._failures % 60 == 0:
                    self.scheduler.backend.log(f"uwsgi-mules: ERROR periodic scheduler failed ({self._failures} "
                                               f"time(s)): {exc!r}")
                self._next = now + min(60.0, float(2 ** min(self._failures, 6)))
                return self._next
            self._failures = 0
            return self._next

    def _schedule(self, now: float) -> float | None:
        if self.lock is not None and not self.lock.held:
            if not self.lock.try_acquire():
                return now + LOCK_RETRY
            self.scheduler.take_over()
            self.scheduler.backend.log(
                f"uwsgi-mules: periodic: mule {self.scheduler.backend.mule_id()} (pid {os.getpid()}) took over "
                f"the schedule at {now:.3f} ({len(entries())} entries, state in {self.lock.path.parent})")
        return self.scheduler.tick(now)


_duties: weakref.WeakKeyDictionary[Any, PeriodicDuty] = weakref.WeakKeyDictionary()
_duties_lock = threading.Lock()


def duty_of(backend: Backend) -> PeriodicDuty:
    """The duty of ``backend`` (one per backend: per process on real uWSGI, per fake)."""
    with _duties_lock:
        found = _duties.get(backend)
        if found is None:
            found = _duties[backend] = PeriodicDuty(backend)
        return found


def periodic_duty(backend: Backend, now: float) -> float | None:
    """The idle duty: schedule if there are entries and this process holds the lock."""
    if not entries() or (backend.is_real and not backend.mule_id()):
        return None
    return duty_of(backend)(now)
