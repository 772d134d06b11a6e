"""Virtual time for the fake: the master's timers, rb-timers and cron table.

uWSGI's master raises a signal when a timer (``add_timer``), a red-black
timer (``add_rb_timer``) or a cron entry (``add_cron``) is due. The fake
keeps the same tables against a :class:`VirtualClock` that only moves when
a test calls :meth:`MasterSchedule.advance`, so schedules are deterministic:

* a timer of ``secs`` first fires ``secs`` after it was added, then every
  ``secs``; ``secs <= 0`` never fires (a disarmed timerfd);
* an rb-timer fires ``iterations`` times (0: forever), ``secs`` apart;
* cron is checked on every whole virtual second, like the master's
  1-second loop, on the *wall-clock* time (``localtime``): a match fires
  when at least 60 seconds passed since the entry last fired. ``-1`` means
  any value, ``-N`` "value % N == 0"; when both day and weekday are >= 0
  they are ORed (crontab), and weekday 7 is Sunday.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

#: at most this many entries per table (uWSGI 2.0)
MAX_ENTRIES = 64


def cron_matches(when: datetime, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
    """``uwsgi_cron_task_needs_execution`` of uWSGI 2.0, on a local datetime."""
    return _field_ok(when.minute, minute) and _field_ok(when.hour, hour) and _date_ok(when, day, month, weekday)


class VirtualClock:
    """Elapsed virtual seconds plus the wall-clock time they map to.

    ``start`` is the wall-clock time at elapsed 0 (default: the real time
    when the clock is created, so ``time.time()``-based ``at`` values of
    application code stay meaningful); tests of schedules pin it with
    :meth:`set_datetime`.
    """

    def __init__(self, start: datetime | float | None = None) -> None:
        self.elapsed = 0.0
        self._start_epoch = float(math.floor(time.time())) if start is None else _epoch(start)

    def monotonic(self) -> float:
        return self.elapsed

    def time(self) -> float:
        """Virtual ``time.time()``."""
        return self._start_epoch + self.elapsed

    def now(self) -> datetime:
        """Virtual local wall-clock time."""
        return datetime.fromtimestamp(self.time())

    def set_datetime(self, when: datetime | float) -> None:
        """Make the virtual wall clock read ``when`` now (local time)."""
        self._start_epoch = _epoch(when) - self.elapsed


def _epoch(when: datetime | float) -> float:
    return when.timestamp() if isinstance(when, datetime) else float(when)


@dataclass
class TimerEntry:
    signum: int
    seconds: int
    iterations: int  # rb-timers: 0 = forever; plain timers: 0
    rb: bool
    next_at: float | None  # virtual elapsed seconds, None = never
    done: int = 0


@dataclass
class CronEntry:
    signum: int
    minute: int
    hour: int
    day: int
    month: int
    weekday: int
    last_job: float | None = None  # wall epoch of the last firing


class MasterSchedule:
    """The timer, rb-timer and cron tables of the fake master."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.timers: list[TimerEntry] = []
        self.crons: list[CronEntry] = []

    # -- registration (raw uwsgi semantics) ---------------------------------

    def add_timer(self, signum: int, seconds: int) -> bool:
        if sum(1 for t in self.timers if not t.rb) >= MAX_ENTRIES:
            return False
        next_at = self.clock.elapsed + seconds if seconds > 0 else None
        self.timers.append(TimerEntry(signum, seconds, 0, False, next_at))
        return True

    def add_rb_timer(self, signum: int, seconds: int, iterations: int) -> bool:
        if sum(1 for t in self.timers if t.rb) >= MAX_ENTRIES:
            return False
        if seconds <= 0 and iterations <= 0:
            # uWSGI's master would re-arm this timer in a busy loop forever
            raise ValueError(
                f"add_rb_timer({signum}, {seconds}, 0) would make real uWSGI's master spin forever"
            )
        self.timers.append(TimerEntry(signum, seconds, iterations, True, self.clock.elapsed + max(seconds, 0)))
        return True

    def add_cron(self, signum: int, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
        if len(self.crons) >= MAX_ENTRIES:
            return False
        self.crons.append(CronEntry(signum, minute, hour, day, month, weekday))
        return True

    # -- time passing -------------------------------------------------------

    def next_event(self, limit: float) -> tuple[float, object] | None:
        """The earliest due entry at or before elapsed ``limit``."""
        best: tuple[float, int, object] | None = None
        for index, timer in enumerate(self.timers):
            if (timer.next_at is not None and timer.next_at <= limit
                    and (best is None or (timer.next_at, index) < best[:2])):
                best = (timer.next_at, index, timer)
        for index, cron in enumerate(self.crons):
            at = self._cron_next(cron, limit)
            if at is not None and (best is None or (at, len(self.timers) + index) < best[:2]):
                best = (at, len(self.timers) + index, cron)
        return None if best is None else (best[0], best[2])

    def fire(self, entry: object, route: Callable[[int], None]) -> None:
        """Raise the entry's signal and re-arm it (the clock is at its time)."""
        if isinstance(entry, TimerEntry):
            entry.done += 1
            if entry.rb and entry.iterations and entry.done >= entry.iterations:
                entry.next_at = None
            else:
                entry.next_at = self.clock.elapsed + entry.seconds if entry.seconds > 0 else self.clock.elapsed
            route(entry.signum)
        elif isinstance(entry, CronEntry):
            entry.last_job = self.clock.time()
            route(entry.signum)

    def _cron_next(self, cron: CronEntry, limit: float) -> float | None:
        """Elapsed time of the cron entry's next firing, if <= ``limit``."""
        offset = self.clock.time() - self.clock.elapsed  # wall epoch at elapsed 0
        t = float(math.ceil(self.clock.time()))  # the master checks on whole seconds
        end = offset + limit
        while t <= end:
            if cron.last_job is not None and t < cron.last_job + 60:
                t = float(math.ceil(cron.last_job + 60))
                continue
            when = datetime.fromtimestamp(t)
            if cron_matches(when, cron.minute, cron.hour, cron.day, cron.month, cron.weekday):
                return t - offset
            t = _skip(when, cron)
        return None


def _skip(when: datetime, cron: CronEntry) -> float:
    """The next whole second worth checking after a non-matching ``when``:
    the next day when the date cannot match, else the next hour or minute."""
    if not _date_ok(when, cron.day, cron.month, cron.weekday):
        following = (when + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    elif not _field_ok(when.hour, cron.hour):
        following = (when + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    else:
        following = (when + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return following.timestamp()


def _field_ok(value: int, spec: int) -> bool:
    """A cron field as uWSGI compares it: ``-N`` matches every value N divides, else ``spec`` itself."""
    return value % -spec == 0 if spec < 0 else value == spec


def _date_ok(when: datetime, day: int, month: int, weekday: int) -> bool:
    """uWSGI's date check: both day and weekday set (>= 0) match either one, as in crontab."""
    wday = (when.weekday() + 1) % 7  # C: Sunday is 0
    day_ok = _field_ok(when.day, day)
    week_ok = _field_ok(wday, 0 if weekday == 7 else weekday)
    if day >= 0 and weekday >= 0:
        return _field_ok(when.month, month) and (day_ok or week_ok)
    return _field_ok(when.month, month) and day_ok and week_ok
