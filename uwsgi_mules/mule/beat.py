"""A mule's heartbeat file: its counters, its waiting room and its task
timings, written at most once a second for monitors to read.

:func:`beat_duty` is an idle duty (:mod:`uwsgi_mules.idle_duties`, registered
when this module is imported, as the programmed mule's loop does): the loop
runs it between batches of messages and on idle wake-ups (never per
message). It rewrites ``<runtime dir>/mule<N>.stats``
(a small JSON document, written to a temporary file and renamed) when a
second has passed since the last write, and returns the next time it wants
to run (the shape of a loop *duty*). A mule stuck in a long task stops
beating: the time of its last beat tells a monitor since when, at most, the
task it is running started.

Per-task timings (runs, failures, durations) are collected only when
``UWSGIMULES_TASK_STATS=1`` is set in the mule's environment: each
registered function is then wrapped in a timer (about a microsecond per
call); without it the file says ``"tasks": null`` (unknown).

:func:`read_beat` reads a file back (a monitor; never raises for a missing
or damaged file, it returns None).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..idle_duties import register_idle_duty

#: the mule environment variable that turns the per-task timers on
TASK_STATS_ENV = "UWSGIMULES_TASK_STATS"
#: seconds between two writes of the file
INTERVAL = 1.0
#: durations kept per task path (the recent window the quantiles are taken over)
WINDOW = 256
#: task paths timed at most (the others are counted under "other")
MAX_TASKS = 64
OTHER = "other"
FORMAT = 1


def beat_path(runtime_dir: Path, mule_id: int) -> Path:
    """The heartbeat file of mule ``mule_id``."""
    return runtime_dir / f"mule{mule_id}.stats"


class TaskTimer:
    """Runs, failures and the recent durations of each task path (in the mule)."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.durations: dict[str, deque[float]] = {}

    def observe(self, path: str, seconds: float, ok: bool) -> None:
        if path not in self.runs and len(self.runs) >= MAX_TASKS:
            path = OTHER
        self.runs[path] = self.runs.get(path, 0) + 1
        if not ok:
            self.failures[path] = self.failures.get(path, 0) + 1
        window = self.durations.get(path)
        if window is None:
            window = self.durations[path] = deque(maxlen=WINDOW)
        window.append(seconds)

    def wrap(self, path: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` timed under ``path`` (the wrapper is marked: never wrapped twice)."""
        observe = self.observe
        clock = time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            ok = False
            try:
                value = func(*args, **kwargs)
                ok = True
                return value
            finally:
                observe(path, clock() - start, ok)

        timed.__wrapped__ = func  # type: ignore[attr-defined]
        timed.__uwsgi_mules_timed__ = True  # type: ignore[attr-defined]
        return timed

    def wrap_all(self, tasks: dict[str, Callable[..., Any]]) -> None:
        """Time every registered function not timed yet (new registrations included)."""
        for path, func in list(tasks.items()):
            if not getattr(func, "__uwsgi_mules_timed__", False):
                tasks[path] = self.wrap(path, func)

    def as_json(self) -> dict[str, Any]:
        return {path: {"runs": runs, "failures": self.failures.get(path, 0),
                       "durations": [round(d, 6) for d in self.durations.get(path, ())]}
                for path, runs in self.runs.items()}


class MuleBeat:
    """The heartbeat of one mule (see the module); call it with the wall time."""

    def __init__(self, dispatcher: Any, mule_id: int) -> None:
        self.dispatcher = dispatcher
        self.mule_id = mule_id
        directory = dispatcher.backend.runtime_dir()
        self.path = beat_path(Path(directory), mule_id) if directory is not None else None
        self.started = time.time()
        self.next_at = 0.0
        enabled = (dispatcher.backend.getenv(TASK_STATS_ENV) or "") not in ("", "0")
        self.timer = TaskTimer() if enabled else None
        self._known_tasks = -1

    def __call__(self, now: float) -> float | None:
        if self.path is None:
            return None
        if now < self.next_at:
            return self.next_at
        self.next_at = now + INTERVAL
        tasks = self.dispatcher.registry.tasks
        if self.timer is not None and len(tasks) != self._known_tasks:
            self.timer.wrap_all(tasks)
            self._known_tasks = len(tasks)
        try:
            self._write(now)
        except OSError as exc:  # a monitor reads stale figures; the mule goes on
            self.dispatcher.backend.log(f"uwsgi-mules: mule {self.mule_id} cannot write {self.path}: {exc}")
            self.path = None
        return self.next_at

    def state(self, now: float) -> dict[str, Any]:
        counters = self.dispatcher.counters
        room = self.dispatcher.deferral.rooms.get(self.mule_id)
        return {
            "format": FORMAT, "mule_id": self.mule_id, "pid": os.getpid(), "at": now, "started": self.started,
            "counters": {name: getattr(counters, name) for name in
                         ("ran", "failed", "rejected", "unregistered", "unhandled", "dead")},
            "waiting": len(room) if room is not None else 0,
            "next_due": room.next_due() if room is not None else None,
            "tasks": self.timer.as_json() if self.timer is not None else None,
        }

    def _write(self, now: float) -> None:
        path = self.path
        assert path is not None
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps(self.state(now)).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)


_beats: dict[int, MuleBeat] = {}


def beat(dispatcher: Any, mule_id: int, now: float | None = None) -> float | None:
    """Write mule ``mule_id``'s heartbeat file if a second has passed (the
    loop's duty; cheap otherwise); returns the next time it wants to run."""
    found = _beats.get(mule_id)
    if found is None or found.dispatcher is not dispatcher:
        found = _beats[mule_id] = MuleBeat(dispatcher, mule_id)
    return found(time.time() if now is None else now)


def beat_duty(backend: Any, now: float) -> float | None:
    """:func:`beat` as an idle duty of the mule ``backend`` runs in (nothing outside a mule)."""
    mule_id = backend.mule_id()
    if not mule_id:
        return None
    from .dispatch import dispatcher_for

    return beat(dispatcher_for(backend), mule_id, now)  # the fake's own clock on the fake


register_idle_duty(beat_duty)


def read_beat(path: Path) -> dict[str, Any] | None:
    """The heartbeat in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(4 << 20))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None
