"""Re-send or delete dead tasks from a page, each record exactly once.

Two people may click "re-send" on the same dead task at once (two browser
tabs, two workers of the instance serving the page). Each record is first
*claimed*: renamed, with :func:`os.rename` (atomic within a directory tree
of one file system), from ``<dir>/dead/<id>.dead`` into a claim directory of
its own, ``<dir>/dead/.claims/<random>/``, keeping its name (its signature
covers its name). Exactly one rename of a given record succeeds; the others
find no file and report the task as already taken. The claimant then reads
the record through :func:`uwsgi_mules.mule.delivery.dead.open_record`,
writes the call into ``<dir>/dead/resend/`` as a backlog file (durably:
:func:`~uwsgi_mules.mule.delivery.backlog.save`), where a running mule picks
it up as it does for ``uwsgi-mules dead --resend``, and removes the claimed
record. Deleting claims the same way, then removes.

A claim left behind by a process that died between the rename and the
write is returned to ``dead/`` by :func:`return_stale_claims` (after
:data:`STALE_CLAIM_SECONDS`).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..datakey import DataSigner, data_key
from ..instance import secure_dir
from ..mule.delivery.backlog import BacklogError, SavedOffload, save
from ..mule.delivery.dead import SUFFIX, dead_dir, list_dead, open_record, resend_dir

CLAIMS = ".claims"
#: a claim older than this was left by a process that died mid-action
STALE_CLAIM_SECONDS = 60.0
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


def resend_dead_once(base: Path, ids: list[str] | None) -> ActionReport:
    """Re-send dead tasks ``ids`` (None: every one) of the instance directory ``base``, each exactly once."""
    return _act(base, ids, resend=True)


def delete_dead_once(base: Path, ids: list[str] | None) -> ActionReport:
    """Delete dead tasks ``ids`` (None: every one), each exactly once."""
    return _act(base, ids, resend=False)


def _act(base: Path, ids: list[str] | None, *, resend: bool) -> ActionReport:
    report = ActionReport()
    if ids is None:
        ids = [task.id for task in list_dead(base, lambda path, why: report.problems.append(f"{path.name}: {why}"))]
    for task_id in ids:
        if not TASK_ID.match(task_id):
            raise UnknownTaskId(f"{task_id!r} is not a dead task id")
    directory = dead_dir(base)
    claim_dir = directory / CLAIMS / f"{time.time_ns()}-{secrets.token_hex(8)}"
    secure_dir(claim_dir)
    try:
        for task_id in ids:
            _one(directory, claim_dir, base, task_id, resend, report)
    finally:
        try:  # empty unless a record could not be put back: then return_stale_claims does
            claim_dir.rmdir()
        except OSError:
            pass
    return report


def _one(directory: Path, claim_dir: Path, base: Path, task_id: str, resend: bool, report: ActionReport) -> None:
    name = f"{task_id}{SUFFIX}"
    claimed = claim_dir / name
    try:
        os.rename(directory / name, claimed)  # the claim: exactly one caller succeeds
    except FileNotFoundError:
        report.gone.append(task_id)
        return
    if resend:
        try:
            task = open_record(DataSigner(data_key(directory)), claimed)
        except (BacklogError, ValueError, KeyError, TypeError) as exc:
            os.rename(claimed, directory / name)  # never re-sent; left where it was
            report.problems.append(f"{name}: {exc}")
            return
        try:
            save(resend_dir(base), [SavedOffload(task.target, task.body, task.path)], label="resend")
        except OSError as exc:
            os.rename(claimed, directory / name)
            report.problems.append(f"{name}: not re-sent: {exc}")
            return
    claimed.unlink()
    report.done.append(task_id)


def return_stale_claims(base: Path, older_than: float = STALE_CLAIM_SECONDS) -> int:
    """Put records claimed by a process that died mid-action back into
    ``dead/``; returns how many."""
    root = dead_dir(base) / CLAIMS
    if not root.is_dir():
        return 0
    returned = 0
    limit = time.time() - older_than
    for claim_dir in root.iterdir():
        try:
            if claim_dir.stat().st_mtime > limit:
                continue
            for record in claim_dir.glob(f"*{SUFFIX}"):
                os.rename(record, dead_dir(base) / record.name)
                returned += 1
            claim_dir.rmdir()
        except OSError:
            continue
    return returned
