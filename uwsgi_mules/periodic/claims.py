"""One run per due time on the mule side: a run claims ``(entry, due time)`` before it runs.

The scheduler sends a due time at least once: a successor that finds
"T, sending" in the state (its predecessor died between recording it and
recording "T, sent") sends T again, not knowing whether the first copy
went out. The mule that runs a call carrying ``meta["periodic"] = [entry,
T]`` first claims ``(entry, T)`` here, with an atomic create
(``O_CREAT | O_EXCL``) of a marker in :data:`CLAIMS_NAME` beside the state
file (the backlog directory, else the runtime directory: the directory the
scheduler uses); a copy whose claim exists already ran and is skipped with
one log line. Together: exactly one run per due time across a crash of the
scheduling process.

Only a first attempt claims: a retry (``meta["attempt"] >= 1``, after an
exception of ``retry_on`` or a crash of its mule) runs again as any retry
does, and a dead task sent again by ``uwsgi-mules dead`` carries no
``periodic`` key (its claim is spent: see
:meth:`uwsgi_mules.mule.deferral.Deferral._record_dead`). The markers of
the last :data:`KEEP` due times of each entry are kept; older ones are
removed when a new one is claimed. On a fake without a backlog directory
the claims are in memory. Claims are per instance directory; across
instances the lease (:mod:`.lease`) already lets only one send a due time.
"""

from __future__ import annotations

import os
import threading
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..backends.base import Backend
from ..instance import secure_dir
from .duty import state_dir
from .entries import entries
from .sending import META_KEY

#: the directory of the markers, beside the state file
CLAIMS_NAME = "periodic-runs"
#: markers kept per entry (the latest due times)
KEEP = 256

__all__ = ["CLAIMS_NAME", "KEEP", "RunClaims", "admit_run", "claims_of"]


class RunClaims:
    """The claimed due times of one instance: marker files in ``directory`` (None: in memory)."""

    def __init__(self, directory: Path | None, keep: int = KEEP) -> None:
        self.directory = directory
        self.keep = keep
        self._memory: dict[str, set[float]] = {}
        self._lock = threading.Lock()

    def claim(self, entry: str, due: float) -> bool:
        """True if this is the first claim of ``(entry, due)`` (the run goes ahead)."""
        if self.directory is None:
            with self._lock:
                claimed = self._memory.setdefault(entry, set())
                if due in claimed:
                    return False
                claimed.add(due)
                for old in sorted(claimed)[:-self.keep]:
                    claimed.discard(old)
                return True
        folder = secure_dir(self.directory / CLAIMS_NAME / quote(entry, safe=""))
        try:
            os.close(os.open(folder / repr(float(due)), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            return False
        self._forget_old(folder)
        return True

    def _forget_old(self, folder: Path) -> None:
        dues: list[tuple[float, str]] = []
        for name in os.listdir(folder):
            try:
                dues.append((float(name), name))
            except ValueError:
                continue
        for _, name in sorted(dues)[:-self.keep]:
            try:
                os.unlink(folder / name)
            except FileNotFoundError:  # another mule removed it first
                pass


_claims: weakref.WeakKeyDictionary[Any, RunClaims] = weakref.WeakKeyDictionary()
_claims_lock = threading.Lock()


def claims_of(backend: Backend) -> RunClaims:
    """The claims of ``backend``'s instance (one object per backend)."""
    with _claims_lock:
        found = _claims.get(backend)
        if found is None:
            found = _claims[backend] = RunClaims(state_dir(backend))
        return found


def admit_run(backend: Backend, meta: dict[str, Any]) -> bool:
    """The run guard of ``meta["periodic"]``: False (logged) for a copy of a
    due time that already ran; True for a first run, a retry, or a tag that
    is not ``[entry, due]`` (then the call is not a scheduler's run)."""
    tag = meta.get(META_KEY)
    if meta.get("attempt", 0) or not isinstance(tag, (list, tuple)) or len(tag) != 2:
        return True
    entry, due = tag
    if not isinstance(entry, str) or isinstance(due, bool) or not isinstance(due, (int, float)):
        return True
    try:
        first = claims_of(backend).claim(entry, float(due))
    except OSError as exc:  # a run is not lost for a directory it cannot claim in
        backend.log(f"uwsgi-mules: ERROR periodic {entry}: the run due {_when(entry, due)} could not be claimed "
                    f"({exc!r}); it runs (a copy sent again by a successor scheduler may run too)")
        return True
    if not first:
        backend.log(f"uwsgi-mules: periodic {entry}: the run due {_when(entry, due)} already ran; this copy "
                    "(sent again by the scheduler that took over) is skipped")
    return first


def _when(name: str, due: float) -> str:
    for entry in entries():
        if entry.name == name:
            return entry.schedule.aware(due).isoformat()
    return datetime.fromtimestamp(due, timezone.utc).isoformat()
