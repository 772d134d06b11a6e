"""Tasks of the stop-during-a-task tests: one that is told to stop, then kills its mule."""

from __future__ import annotations

from collections.abc import Callable

from uwsgi_mules import Mule
from uwsgi_mules.backends.base import SimulatedCrash

#: what the task calls before it dies (the test puts the stop signal's handler here)
WHILE_RUNNING: list[Callable[[], None]] = []


@Mule(1).offload()
def told_to_stop_then_dies() -> None:
    """A stop signal arrives while this task runs; then it kills its mule."""
    for call in WHILE_RUNNING:
        call()
    raise SimulatedCrash


@Mule(1).offload()
def queued(task_id: int) -> None:
    """Queued behind the dying task."""
