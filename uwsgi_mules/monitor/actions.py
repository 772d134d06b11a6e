"""Re-send or delete dead tasks from a page, each record exactly once.

Two people may click "re-send" on the same dead task at once (two browser
tabs, two threads or workers serving the page, the page and ``uwsgi-mules
dead --resend-all``). Re-sending is :func:`uwsgi_mules.mule.delivery.resend.resend_once`,
the command line's own: each record is claimed by an atomic rename into
``<dir>/dead/claiming-<pid>/`` before it is read, so exactly one caller
re-sends it; the others find it gone. Deleting claims the same way (the
same claim directory, so a claim left by a process that died is put back
by :func:`~uwsgi_mules.mule.delivery.resend.release_stale_claims`), then
removes the claimed record.

The claim directory is one per process: the threads of one process (the
threaded standalone page, a uWSGI worker with threads) act one at a time
(:data:`_ONE_AT_A_TIME`), or one would remove the directory while another
renames a record into it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..instance import secure_dir
from ..mule.delivery.dead import SUFFIX, dead_dir, list_dead
from ..mule.delivery.resend import CLAIM_PREFIX, release_stale_claims, resend_once

#: the threads of this process share its claim directory: one action at a time
_ONE_AT_A_TIME = threading.Lock()
#: what a dead task id looks like (``<time ns>-<pid>-<seq>``): nothing else is ever used in a path
TASK_ID = re.compile(r"^[0-9]{1,24}-[0-9]{1,10}-[0-9]{1,12}$")


class UnknownTaskId(ValueError):
    """Not a dead task id."""


@dataclass
class ActionReport:
    """What an action did: the ids done, the ids someone else took first (or
    that were never there), and records that could not be read."""

    done: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, list[str]]:
        return {"done": self.done, "gone": self.gone, "problems": self.problems}


def _checked(ids: list[str] | None) -> list[str] | None:
    for task_id in ids or ():
        if not TASK_ID.match(task_id):
            raise UnknownTaskId(f"{task_id!r} is not a dead task id")
    return ids


def resend_dead_once(base: Path, ids: list[str] | None) -> ActionReport:
    """Re-send dead tasks ``ids`` (None: every one) of the instance directory ``base``, each exactly once."""
    wanted = _checked(ids)
    report = ActionReport()
    with _ONE_AT_A_TIME:
        sent = resend_once(base, wanted, lambda path, why: report.problems.append(f"{path.name}: {why}"))
    report.done = [task.id for task in sent]
    report.gone = [task_id for task_id in wanted or () if task_id not in set(report.done)]
    return report


def delete_dead_once(base: Path, ids: list[str] | None) -> ActionReport:
    """Delete dead tasks ``ids`` (None: every one), each record by exactly one caller."""
    with _ONE_AT_A_TIME:
        return _delete(base, _checked(ids))


def _delete(base: Path, wanted: list[str] | None) -> ActionReport:
    report = ActionReport()
    directory = dead_dir(base)
    if not directory.is_dir():
        report.gone = list(wanted or ())
        return report
    release_stale_claims(directory)
    if wanted is None:
        wanted = [task.id for task in list_dead(base, lambda path, why: report.problems.append(f"{path.name}: {why}"))]
    claim = secure_dir(directory / f"{CLAIM_PREFIX}{os.getpid()}")
    for task_id in wanted:
        name = f"{task_id}{SUFFIX}"
        try:
            os.rename(directory / name, claim / name)  # the claim: exactly one caller succeeds
        except FileNotFoundError:
            report.gone.append(task_id)
            continue
        (claim / name).unlink()
        report.done.append(task_id)
    with contextlib.suppress(OSError):
        claim.rmdir()
    return report
