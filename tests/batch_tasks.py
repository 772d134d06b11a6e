"""Offloaded functions of the due-batch tests on the fake: every run is
recorded in order, and a run can ask its mule to stop (as uWSGI's SIGHUP does
while a task runs)."""

from __future__ import annotations

from collections.abc import Callable

from uwsgi_mules import Mule
from uwsgi_mules.backends.selection import current_backend

#: (kind, id, clock) of every run, in order
RUNS: list[tuple[str, int, float]] = []
#: called with the task id before each run of ``due`` (a test sets it)
ON_DUE: list[Callable[[int], None]] = []


@Mule(1).offload()
def due(task_id: int) -> None:
    for hook in ON_DUE:
        hook(task_id)
    RUNS.append(("due", task_id, current_backend().wall_time()))


@Mule(1).offload()
def plain(task_id: int) -> None:
    RUNS.append(("plain", task_id, current_backend().wall_time()))
