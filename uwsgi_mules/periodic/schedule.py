"""When a periodic entry is due: a cron expression or an interval, in a timezone.

:class:`Schedule` is the checked declaration. Every due time is an aware
``datetime`` of the schedule's timezone and an epoch second (``float``); the
scheduler compares epoch seconds only.

* ``cron``: 5 fields (minute hour day-of-month month day-of-week) with the
  usual ranges, lists, steps and names, parsed and iterated by ``cronsim``
  (the ``cron`` extra: ``pip install uwsgi-mules[cron]``; BSD-3-Clause,
  made for exactly this and maintained), evaluated in ``tz``. Across
  daylight saving changes it follows Debian cron, as cronsim does: a
  fixed-time entry that falls into the skipped hour runs once when the
  clock jumps (02:30 on the spring-forward night runs at 03:00), one that
  falls into the repeated hour runs once; entries with ``*`` in the minute
  or hour field run at every matching instant (twice in a repeated hour).
* ``every``: a ``timedelta`` (whole seconds, at least 1 s) counted from the
  Unix epoch (so due times are the same in every process and across
  restarts: ``every=timedelta(hours=1)`` is due on the hour); needs no
  extra. ``tz`` does not change interval due times.

``catch_up`` says what runs for due times that passed while no scheduler was
running (a stop, a reload, a crash): ``"skip"`` nothing (the next due time
runs), ``"latest"`` one run, for the latest missed time, ``"all"`` each
missed time, at most :data:`MAX_CATCH_UP` (the latest ones; how many older
ones were dropped is logged). ``jitter``: each run is held a random
0..``jitter`` seconds after its due time (as ``offload_at`` holds a call).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: catch_up="all" runs at most this many missed due times (the latest ones)
MAX_CATCH_UP = 100
CATCH_UP_POLICIES = ("skip", "latest", "all")

__all__ = ["CATCH_UP_POLICIES", "MAX_CATCH_UP", "Schedule"]


def _zone(tz: Any) -> tzinfo:
    """A ``zoneinfo`` timezone from a name or a tzinfo; ValueError otherwise."""
    if tz is None:
        return timezone.utc
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"tz={tz!r} is not a known IANA timezone name (e.g. 'Europe/Paris', 'UTC')") from exc
    if isinstance(tz, tzinfo):
        if tz.utcoffset(datetime(2000, 1, 1)) is None:
            raise ValueError(f"tz={tz!r} is a naive tzinfo (no UTC offset): give a zoneinfo name such as 'UTC'")
        return tz
    raise ValueError(f"tz must be a timezone name or a tzinfo, not {type(tz).__name__}")


def _cron_parser() -> Any:
    try:
        import cronsim
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ValueError(
            "cron schedules need the 'cron' extra (pip install 'uwsgi-mules[cron]', which installs cronsim); "
            "every=timedelta(...) works without it"
        ) from exc
    return cronsim


def _check_cron(expression: object) -> str:
    if not isinstance(expression, str) or len(expression.split()) != 5:
        raise ValueError(f"cron={expression!r}: a cron expression has 5 fields (minute hour day month weekday)")
    cronsim = _cron_parser()
    try:
        cronsim.CronSim(expression, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except cronsim.CronSimError as exc:
        raise ValueError(f"cron={expression!r}: {exc}") from exc
    return expression


def _check_every(every: object) -> float:
    if not isinstance(every, timedelta):
        raise ValueError(f"every must be a datetime.timedelta, not {type(every).__name__}")  # noqa: TRY004 - the documented error for any bad value
    seconds = every.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"every={every!r}: an interval is whole seconds, at least 1 second")
    return seconds


def _check_jitter(jitter: object) -> float:
    if isinstance(jitter, timedelta):
        jitter = jitter.total_seconds()
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not math.isfinite(jitter) or jitter < 0:
        raise ValueError(f"jitter={jitter!r}: seconds (or a timedelta), finite and >= 0")
    return float(jitter)


@dataclass(frozen=True)
class Schedule:
    """A checked schedule; build it with :meth:`build` (ValueError with the reason for bad input)."""

    cron: str | None
    every: float | None
    tz: tzinfo
    catch_up: str
    jitter: float
    _parser: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, *, cron: str | None = None, every: timedelta | None = None, tz: Any = None,
              catch_up: str = "latest", jitter: float | timedelta = 0.0) -> Schedule:
        """Check a declaration: exactly one of ``cron`` and ``every``."""
        if (cron is None) == (every is None):
            raise ValueError("a schedule needs exactly one of cron='...' and every=timedelta(...)")
        if catch_up not in CATCH_UP_POLICIES:
            raise ValueError(f"catch_up={catch_up!r}: one of {', '.join(map(repr, CATCH_UP_POLICIES))}")
        zone = _zone(tz)
        if cron is not None:
            return cls(_check_cron(cron), None, zone, catch_up, _check_jitter(jitter), _cron_parser())
        return cls(None, _check_every(every), zone, catch_up, _check_jitter(jitter))

    def describe(self) -> str:
        """``cron '*/5 * * * *' Europe/Paris`` or ``every 300 s``, with the policy."""
        when = f"cron {self.cron!r} {self.tz}" if self.cron is not None else f"every {self.every:g} s"
        jitter = f", jitter {self.jitter:g} s" if self.jitter else ""
        return f"{when}, catch_up={self.catch_up}{jitter}"

    def fingerprint(self) -> str:
        """What identifies the due times (a changed schedule starts from now again)."""
        return f"cron:{self.cron}@{self.tz}" if self.cron is not None else f"every:{self.every:g}"

    def due_after(self, after: float) -> Iterator[float]:
        """The due times strictly after epoch ``after``, in order (endless)."""
        if self.every is not None:
            step = self.every
            due = (math.floor(after / step) + 1) * step
            while True:
                yield due
                due += step
        start = datetime.fromtimestamp(math.floor(after), self.tz)
        for when in self._parser.CronSim(self.cron, start):
            yield when.timestamp()

    def next_after(self, after: float) -> float:
        """The first due time strictly after epoch ``after``."""
        return next(self.due_after(after))

    def latest_at_or_before(self, now: float) -> float | None:
        """The latest due time <= ``now`` (None if there is none in the last 400 days)."""
        if self.every is not None:
            return math.floor(now / self.every) * self.every
        start = datetime.fromtimestamp(math.floor(now) + 1, self.tz)
        for when in self._parser.CronSim(self.cron, start, reverse=True):
            due = when.timestamp()
            if due <= now:
                return due
            if due < now - 400 * 86400:  # pragma: no cover - cronsim iterates backwards
                return None
        return None  # pragma: no cover

    def plan(self, last_due: float, now: float, late_before: float) -> tuple[list[float], int]:
        """The due times in (``last_due``, ``now``] to run, and how many of
        them are not run. Those after ``late_before`` are on time and all run;
        those at or before it were missed (no scheduler saw them in time) and
        follow ``catch_up``; "all" keeps at most :data:`MAX_CATCH_UP`."""
        missed: list[float] = []
        on_time: list[float] = []
        start, total_missed = self._skip_far_back(last_due, late_before)
        for due in self.due_after(start):
            if due > now:
                break
            if due > late_before:
                on_time.append(due)
                continue
            total_missed += 1
            missed.append(due)
            if len(missed) > MAX_CATCH_UP:
                del missed[0]
        if self.catch_up == "skip":
            missed = []
        elif self.catch_up == "latest":
            missed = missed[-1:]
        return missed + on_time, total_missed - len(missed)

    def _skip_far_back(self, last_due: float, late_before: float) -> tuple[float, int]:
        """Where to start listing due times after ``last_due`` so that no more
        than about :data:`MAX_CATCH_UP` missed ones are listed, and how many
        due times that skips (a lower bound for cron)."""
        if self.every is not None:
            skipped = max(0, math.floor(late_before / self.every) - math.floor(last_due / self.every) - MAX_CATCH_UP - 1)
            return last_due + skipped * self.every, skipped
        start = datetime.fromtimestamp(math.floor(late_before) + 1, self.tz)
        for seen, when in enumerate(self._parser.CronSim(self.cron, start, reverse=True), start=1):
            due = when.timestamp()
            if due <= last_due:
                return last_due, 0
            if seen > MAX_CATCH_UP + 1:
                return due, 1  # at least one older due time is not looked at
        return last_due, 0  # pragma: no cover - cronsim iterates endlessly

    def aware(self, epoch: float) -> datetime:
        """Epoch seconds as an aware datetime of this schedule's timezone."""
        return datetime.fromtimestamp(epoch, self.tz)
