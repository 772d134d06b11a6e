"""``uwsgi-mules schedule``: list an instance's periodic entries.

Reads the state file of :mod:`uwsgi_mules.periodic.state` in the
instance's backlog directory (``UWSGIMULES_BACKLOG_DIR``) or its runtime
directory, and prints each entry, its next due time, its last due time,
when that run was sent and its outcome.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from ..instance import BACKLOG_DIR_ENV, RUNTIME_DIR_ENV
from ..periodic.state import STATE_NAME
from ..periodic.view import ScheduleRow, schedule_rows, scheduler_pid

EXIT_OK = 0
EXIT_NO_STATE = 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``schedule`` subcommand."""
    schedule = commands.add_parser(
        "schedule",
        help="list the periodic entries: next due time, last run, outcome",
        description="List the periodic entries of an instance (docs: Periodic tasks).",
        epilog=f"DIR defaults to ${BACKLOG_DIR_ENV}, else ${RUNTIME_DIR_ENV}.",
    )
    schedule.add_argument("--dir", type=Path, metavar="DIR",
                          help="the instance's backlog directory, or its runtime directory")


def run(args: argparse.Namespace) -> int:
    """Carry out ``uwsgi-mules schedule``; returns the exit code."""
    directory = args.dir or next((Path(os.environ[n]) for n in (BACKLOG_DIR_ENV, RUNTIME_DIR_ENV)
                                  if os.environ.get(n)), None)
    if directory is None or not (directory / STATE_NAME).is_file():
        where = directory or f"${BACKLOG_DIR_ENV} / ${RUNTIME_DIR_ENV}"
        print(f"no periodic state in {where}: pass --dir (the backlog or runtime directory of an instance "
              "whose mules declared periodic entries)", file=sys.stderr)
        return EXIT_NO_STATE
    rows = schedule_rows(directory, time.time(), lambda line: print(line, file=sys.stderr))
    pid = scheduler_pid(directory)
    print(f"{directory}: {len(rows)} entr{'y' if len(rows) == 1 else 'ies'}"
          + (f", scheduled by pid {pid}" if pid else ""))
    for row in rows:
        print(render(row))
    return EXIT_OK


def _at(when: datetime | None) -> str:
    return "-" if when is None else when.isoformat(timespec="seconds")


def render(row: ScheduleRow) -> str:
    """One entry on one line."""
    outcome = "sending (interrupted?)" if row.sending else (row.outcome or "-")
    return (f"  {row.entry}  [{row.schedule}]  next {_at(row.next_due)}  last due {_at(row.last_due)}  "
            f"sent {_at(row.sent_at)}  {outcome}")
