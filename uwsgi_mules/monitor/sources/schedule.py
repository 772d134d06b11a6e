"""The periodic entries of an instance, through :func:`uwsgi_mules.periodic.view.schedule_rows`.

Their state lives in the instance's backlog directory when it has one,
else in its runtime directory (:func:`uwsgi_mules.periodic.duty.state_dir`);
no state file there means no schedule (nothing is created). A state file
that does not verify is set aside and logged by the periodic package,
exactly as the scheduler does at its next read; the line is kept in the
snapshot's problems too.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from ...periodic.state import STATE_NAME
from ...periodic.view import ScheduleRow, schedule_rows
from ..model import ScheduleEntryView

__all__ = ["has_schedule", "read_schedule", "schedule_view"]


def has_schedule(directory: Path) -> bool:
    """True when ``directory`` holds a periodic state file."""
    return (directory / STATE_NAME).is_file()


def _epoch(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def schedule_view(row: ScheduleRow) -> ScheduleEntryView:
    return ScheduleEntryView(row.entry, row.schedule, _epoch(row.next_due), row.last_due.timestamp(),
                             _epoch(row.sent_at), row.outcome, row.sending)


def read_schedule(directory: Path, now: float, problems: list[str]) -> list[ScheduleEntryView]:
    """The entries whose state is in ``directory`` (none without a state file);
    what cannot be read is added to ``problems``."""
    if not has_schedule(directory):
        return []

    def log(line: str) -> None:
        problems.append(line)
        print(line, file=sys.stderr)  # the log of the process that read it (the instance's, when mounted)

    try:
        rows = schedule_rows(directory, now, log)
    except OSError as exc:  # the data key cannot be read or trusted
        problems.append(f"periodic state in {directory} not read: {exc}")
        return []
    return [schedule_view(row) for row in rows]
