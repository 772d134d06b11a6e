"""Timers, red-black timers, cron entries and file monitors bound to signals.

They all live in the master: when due, the master raises the signal and
routes it to the signal's registered target.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from ..backends.selection import current_backend
from .core import Handler, Signal
from .errors import InvalidSchedule, SignalRoutingWarning
from .targets import WORKER, SignalTarget

#: (name, lowest, highest) of each cron field; -1 is "any", -N "every N"
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


def _seconds(value: int, name: str = "seconds") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSchedule(f"{name} must be a whole number of seconds (uWSGI has no fractions), got {value!r}")
    if value < 1:
        raise InvalidSchedule(f"{name} must be >= 1, got {value} (uWSGI never fires a 0-second timer)")
    return value


def _warn_outside_master(what: str) -> None:
    backend = current_backend()
    worker = backend.worker_id()
    if worker:
        warnings.warn(
            SignalRoutingWarning(
                f"{what} added in worker {worker}: every process that runs this adds another one; "
                "add schedules at import time in the master (no lazy-apps)"
            ),
            stacklevel=4,
        )


def add_timer(signal: Signal | int, seconds: int) -> Signal:
    """Raise ``signal`` every ``seconds`` seconds (first after ``seconds``)."""
    sig = Signal(signal)
    _seconds(seconds)
    _warn_outside_master(f"timer for signal {sig.num}")
    current_backend().add_timer(sig.num, seconds)
    return sig


def add_rb_timer(signal: Signal | int, seconds: int, iterations: int = 0) -> Signal:
    """Raise ``signal`` every ``seconds`` seconds, ``iterations`` times (0: forever)."""
    sig = Signal(signal)
    _seconds(seconds)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise InvalidSchedule(f"iterations must be an int >= 0 (0: forever), got {iterations!r}")
    _warn_outside_master(f"rb-timer for signal {sig.num}")
    current_backend().add_rb_timer(sig.num, seconds, iterations)
    return sig


def check_cron(minute: int, hour: int, day: int, month: int, weekday: int) -> tuple[int, int, int, int, int]:
    """Validate cron fields: a value in range, -1 (any) or -N (value % N == 0)."""
    values = (minute, hour, day, month, weekday)
    for (name, low, high), value in zip(CRON_FIELDS, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSchedule(f"cron {name} must be an int, got {value!r}")
        if value < 0:
            if -value > high:
                raise InvalidSchedule(f"cron {name} -N means 'every N'; N must be 1..{high}, got {value}")
        elif not low <= value <= high:
            raise InvalidSchedule(f"cron {name} must be {low}..{high}, -1 (any) or -N (every N), got {value}")
    return values


def add_cron(signal: Signal | int, minute: int = -1, hour: int = -1, day: int = -1, month: int = -1,
             weekday: int = -1) -> Signal:
    """Raise ``signal`` when the local time matches (crontab semantics;
    ``-N`` is ``*/N``; day and weekday both >= 0 are ORed; weekday 0 or 7 is Sunday)."""
    sig = Signal(signal)
    fields = check_cron(minute, hour, day, month, weekday)
    _warn_outside_master(f"cron for signal {sig.num}")
    current_backend().add_cron(sig.num, *fields)
    return sig


def add_file_monitor(signal: Signal | int, path: str | os.PathLike[str]) -> Signal:
    """Raise ``signal`` whenever ``path`` (a file or directory) changes."""
    sig = Signal(signal)
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise InvalidSchedule(f"a monitored path must be a non-empty str, got {path!r}")
    if len(os.fsencode(text)) > 254:
        raise InvalidSchedule(f"uWSGI monitors paths of at most 254 bytes, got {len(os.fsencode(text))}")
    _warn_outside_master(f"file monitor for signal {sig.num}")
    current_backend().add_file_monitor(sig.num, text)
    return sig


def _bind(handler: Handler, target: Any, signal: Signal | int | None) -> Signal:
    sig = Signal.free() if signal is None else Signal(signal)
    sig.register(handler, target)
    return sig


def timer(seconds: int, handler: Handler, target: SignalTarget | str | Any = WORKER,
          signal: Signal | int | None = None) -> Signal:
    """Register ``handler`` on ``signal`` (default: a free one) for ``target``
    and raise it every ``seconds``. Returns the signal."""
    _seconds(seconds)
    return add_timer(_bind(handler, target, signal), seconds)


def rb_timer(seconds: int, handler: Handler, iterations: int = 0, target: SignalTarget | str | Any = WORKER,
             signal: Signal | int | None = None) -> Signal:
    """Like :func:`timer` with a red-black timer that stops after ``iterations``."""
    _seconds(seconds)
    return add_rb_timer(_bind(handler, target, signal), seconds, iterations)


def cron(handler: Handler, minute: int = -1, hour: int = -1, day: int = -1, month: int = -1, weekday: int = -1,
         target: SignalTarget | str | Any = WORKER, signal: Signal | int | None = None) -> Signal:
    """Register ``handler`` and a cron entry raising its signal."""
    check_cron(minute, hour, day, month, weekday)
    return add_cron(_bind(handler, target, signal), minute, hour, day, month, weekday)


def file_monitor(path: str | os.PathLike[str], handler: Handler, target: SignalTarget | str | Any = WORKER,
                 signal: Signal | int | None = None) -> Signal:
    """Register ``handler`` and a monitor of ``path`` raising its signal."""
    return add_file_monitor(_bind(handler, target, signal), path)
