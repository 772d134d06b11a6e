"""What the page asks, with no web framework: the snapshot as JSON, the
actions on dead tasks, a Django task result, the metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..actions import ActionReport, UnknownTaskId, delete_dead_once, resend_dead_once
from ..model import InstanceSnapshot
from ..snapshot import InstanceSources, take_snapshot
from ..tracker import Tracker
from .text import printable_data

#: a snapshot is reused for this long: many open pages cost one reading
CACHE_SECONDS = 0.5
#: looks a task result up by id: plain data, or None when there is no such result
ResultLookup = Callable[[str], "dict[str, Any] | None"]
ACTIONS = ("resend", "delete")


class ActionRefused(Exception):
    """An action that cannot be done here (read-only, no dead-task directory, a bad id)."""


class Dashboard:
    """One watched instance: its sources, a tracker, and what may be done."""

    def __init__(self, sources: InstanceSources, *, read_only: bool = False,
                 result_lookup: ResultLookup | None = None) -> None:
        self.sources = sources
        self.read_only = read_only
        self.result_lookup = result_lookup
        self.tracker = Tracker()
        self._lock = threading.Lock()
        self._cached: tuple[float, InstanceSnapshot] | None = None

    def snapshot(self) -> InstanceSnapshot:
        """A fresh snapshot, or the one taken less than :data:`CACHE_SECONDS` ago."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= CACHE_SECONDS:
                self._cached = (now, take_snapshot(self.sources, self.tracker))
            return self._cached[1]

    def snapshot_data(self) -> dict[str, Any]:
        """The snapshot as JSON-able data, every string printable."""
        data = self.snapshot().to_dict()
        history = data.pop("history")  # numbers only
        data["read_only"] = self.read_only
        data["results"] = self.result_lookup is not None
        return {**printable_data(data), "history": history}

    def act(self, action: str, ids: list[str] | None) -> dict[str, Any]:
        """``resend`` or ``delete`` dead tasks ``ids`` (None: all), each record once."""
        if self.read_only:
            raise ActionRefused("this page is read-only")
        if action not in ACTIONS:
            raise ActionRefused(f"unknown action {action!r}")
        base = self.sources.dead_base() or _snapshot_base(self.snapshot())
        if base is None:
            raise ActionRefused("the instance's directory is not known: no dead tasks to act on")
        try:
            report: ActionReport = (resend_dead_once if action == "resend" else delete_dead_once)(base, ids)
        except UnknownTaskId as exc:
            raise ActionRefused(str(exc)) from exc
        with self._lock:
            self._cached = None  # the next look shows the change
        return printable_data(report.as_json())

    def result(self, result_id: str) -> dict[str, Any]:
        """The task result ``result_id`` as plain data (``found`` False when there is none)."""
        if self.result_lookup is None:
            return {"found": False, "error": "task results are looked up in the Django project only "
                    "(the results cache belongs to the instance): mount the page there"}
        found = self.result_lookup(result_id)
        return printable_data({"found": True, **found} if found is not None else {"found": False, "id": result_id})

    def metrics(self) -> bytes:
        """The Prometheus text exposition (needs the ``monitor`` extra)."""
        from ..metrics import exposition

        return exposition(self.snapshot)


def _snapshot_base(snapshot: InstanceSnapshot) -> Any:
    from pathlib import Path

    return Path(snapshot.runtime_dir) if snapshot.runtime_dir else None
