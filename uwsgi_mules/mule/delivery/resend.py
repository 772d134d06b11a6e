"""Re-sending dead tasks exactly once, whoever asks for it.

Several ``uwsgi-mules dead --resend-all`` may run at the same time (two
operators, a cron job and a person). Each record is *claimed* before it is
read: renamed, under its own name, into ``<dir>/dead/claiming-<pid>/``.
``rename`` is atomic, so of two processes claiming the same record exactly
one succeeds; the other finds it gone and skips it without a word. The
claimed records are written as one backlog file of ``<dir>/dead/resend/``
(durably), then deleted. A record that does not verify is put back where
it was and reported; a claim left by a process that died before it
finished (its pid no longer runs) is put back by the next re-send.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from ...datakey import DataSigner, data_key
from ...instance import process_alive, secure_dir
from .backlog import BacklogError, SavedOffload, save
from .dead import SUFFIX, DeadTask, Refused, dead_dir, open_record, resend_dir

#: the directory (under ``dead/``) of the records one process has claimed, followed by its pid
CLAIM_PREFIX = "claiming-"


def resend_once(base: Path, ids: Iterable[str] | None, on_refused: Refused | None = None) -> list[DeadTask]:
    """Queue the dead tasks of ``base`` (``ids``; None: all) to be sent
    again, each record by exactly one caller however many run at once;
    returns the tasks this call re-sent (a record another caller claimed
    first is not among them, and not reported)."""
    directory = dead_dir(base)
    if not directory.is_dir():
        return []
    release_stale_claims(directory)
    wanted = None if ids is None else set(ids)
    paths = [p for p in sorted(directory.glob(f"*{SUFFIX}")) if wanted is None or p.name[: -len(SUFFIX)] in wanted]
    if not paths:
        return []
    claim = secure_dir(directory / f"{CLAIM_PREFIX}{os.getpid()}")
    signer = DataSigner(data_key(directory))
    chosen: list[tuple[Path, DeadTask]] = []
    try:
        for path in paths:
            task = _claim(signer, path, claim, on_refused)
            if task is not None:
                chosen.append((claim / path.name, task))
        if chosen:
            save(resend_dir(base), [SavedOffload(t.target, t.body, t.path) for _, t in chosen], label="resend")
    except BaseException:
        _put_back(claim, directory)  # nothing was re-sent: the records stay dead tasks
        raise
    for claimed, _ in chosen:
        claimed.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        claim.rmdir()
    return [task for _, task in chosen]


def _claim(signer: DataSigner, path: Path, claim: Path, on_refused: Refused | None) -> DeadTask | None:
    """The task of record ``path`` once this process owns it (moved into
    ``claim``); None when another process took it first or it does not verify."""
    claimed = claim / path.name
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return None  # another re-send claimed it (or it was dropped): not ours to report
    try:
        return open_record(signer, claimed)
    except (BacklogError, ValueError, KeyError, TypeError) as exc:
        os.rename(claimed, path)
        if on_refused is not None:
            on_refused(path, str(exc))
        return None


def release_stale_claims(directory: Path) -> int:
    """Put back the records claimed by processes that no longer run; returns how many."""
    released = 0
    for claim in directory.glob(f"{CLAIM_PREFIX}*"):
        pid = claim.name[len(CLAIM_PREFIX) :]
        if not claim.is_dir() or not pid.isdigit() or process_alive(int(pid)):
            continue
        released += _put_back(claim, directory)
        with contextlib.suppress(OSError):
            claim.rmdir()
    return released


def _put_back(claim: Path, directory: Path) -> int:
    moved = 0
    for claimed in claim.glob(f"*{SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            os.rename(claimed, directory / claimed.name)
            moved += 1
    return moved
