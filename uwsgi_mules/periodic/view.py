"""The schedule as a table: for ``uwsgi-mules schedule`` and the monitoring page.

:func:`schedule_rows` reads an instance's state file (it needs neither uWSGI
nor the application: the schedule of each entry is rebuilt from the
fingerprint kept with its state) and returns one :class:`ScheduleRow` per
entry: its name, its schedule, its next due time, its last due time taken
care of, when that run was sent and its outcome as the scheduler saw it
("sent", "send failed: ...", "run by another instance (lease)",
"skipped (N missed)", ...). What the run itself did is in the results and
dead tasks (``uwsgi-mules dead``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .leader import holder_pid
from .schedule import Schedule
from .state import StateFile

__all__ = ["ScheduleRow", "schedule_from_fingerprint", "schedule_rows"]


@dataclass(frozen=True)
class ScheduleRow:
    """One entry of the listing; times are aware datetimes (UTC for intervals)."""

    entry: str
    schedule: str
    next_due: datetime | None
    last_due: datetime
    sent_at: datetime | None
    outcome: str
    sending: bool


def schedule_from_fingerprint(fingerprint: str) -> Schedule | None:
    """The schedule a state's fingerprint names (None if it cannot be rebuilt here, e.g. no cron extra)."""
    kind, _, rest = fingerprint.partition(":")
    try:
        if kind == "every":
            return Schedule.build(every=timedelta(seconds=float(rest)))
        if kind == "cron":
            expression, _, tz = rest.rpartition("@")
            return Schedule.build(cron=expression, tz=tz)
    except ValueError:
        return None
    return None


def schedule_rows(directory: Path, now: float, log: Callable[[str], None] = lambda line: None) -> list[ScheduleRow]:
    """The rows of the instance whose state lives in ``directory`` (the
    backlog directory, else the runtime directory), at epoch ``now``."""
    rows = []
    for name, state in sorted(StateFile(directory, log).read(set_aside=False).items()):
        schedule = schedule_from_fingerprint(state.schedule)
        tz = schedule.tz if schedule is not None else None
        next_due = schedule.aware(schedule.next_after(max(state.due, now))) if schedule is not None else None
        rows.append(ScheduleRow(
            name, state.schedule, next_due, datetime.fromtimestamp(state.due, tz),
            None if state.sent_at is None else datetime.fromtimestamp(state.sent_at, tz),
            state.outcome, state.sending))
    return rows


def scheduler_pid(directory: Path) -> int | None:
    """The pid of the mule that holds (or last held) the scheduler lock of ``directory``."""
    return holder_pid(directory)
