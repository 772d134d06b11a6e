"""One task's result as plain data, and the only code that changes its state.

A :class:`TaskRecord` moves forward only (as the model of django-tasks'
database backend owns its own state changes)::

    READY -> RUNNING -> SUCCESSFUL
                     -> FAILED
                     -> READY (a retry follows) -> RUNNING ...

:meth:`TaskRecord.start`, :meth:`~TaskRecord.succeed` and
:meth:`~TaskRecord.fail` are the transitions; each raises
:class:`TransitionRefused` for a move the machine does not have and
increments :attr:`TaskRecord.version`, which is signed with the record:
the results store never replaces a newer version by an older one, and a
reader refuses a version older than one it has seen (docs/security.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

READY, RUNNING, SUCCESSFUL, FAILED = "READY", "RUNNING", "SUCCESSFUL", "FAILED"
#: the states a task never leaves
FINISHED = (SUCCESSFUL, FAILED)


class TransitionRefused(ValueError):
    """A state change the record's state machine does not have (e.g. back from SUCCESSFUL)."""


@dataclass
class TaskRecord:
    """What is known of one task: Django's ``TaskResult`` fields as plain data
    (times as Unix timestamps)."""

    id: str
    task_path: str  #: ``Task.module_path`` of the registered task
    backend: str  #: the TASKS alias
    queue_name: str
    priority: int
    run_after: float | None
    status: str
    enqueued_at: float
    args: list[Any]
    kwargs: dict[str, Any]
    started_at: float | None = None
    finished_at: float | None = None
    last_attempted_at: float | None = None
    errors: list[list[str]] = field(default_factory=list)  #: ``[exception_class_path, traceback]``
    worker_ids: list[str] = field(default_factory=list)
    return_value: Any = None
    #: the Celery task id of a task sent to Celery (``UWSGI_MULES["ROUTES"]``)
    remote_id: str | None = None
    #: 1 when enqueued, +1 at every transition (signed with the record: it only grows)
    version: int = 1

    def to_json(self) -> bytes:
        # not dataclasses.asdict(): it deep-copies every argument first
        return json.dumps({name: getattr(self, name) for name in FIELDS}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TaskRecord:
        return cls(**json.loads(data))

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    # -- the transitions ------------------------------------------------------------------

    def start(self, worker: str, now: float) -> None:
        """READY -> RUNNING: an attempt begins on ``worker`` (RUNNING again:
        the mule of the previous attempt died and the task is sent again)."""
        self._move((READY, RUNNING), RUNNING)
        self.started_at = self.started_at or now
        self.last_attempted_at = now
        self.worker_ids.append(worker)  # before the call: TaskContext.attempt counts this one

    def succeed(self, return_value: Any, now: float) -> None:
        """RUNNING -> SUCCESSFUL with the task's (JSON) return value."""
        self._move((RUNNING,), SUCCESSFUL)
        self.return_value = return_value
        self.finished_at = now

    def fail(self, error: list[str], now: float, *, will_retry: bool) -> None:
        """RUNNING -> FAILED, or READY when the dispatcher said a retry follows."""
        self._move((RUNNING,), READY if will_retry else FAILED)
        self.errors.append(error)
        if not will_retry:
            self.finished_at = now

    def fail_to_store(self, error: list[str]) -> None:
        """SUCCESSFUL -> FAILED before it is stored: the return value does not fit the results cache."""
        self._move((SUCCESSFUL,), FAILED)
        self.return_value = None
        self.errors.append(error)

    def observe_remote(self, status: str, **values: Any) -> None:
        """The state another system keeps (Celery's result backend) shown on
        this record, read-only (never stored): it follows that system, and
        moves forward like any transition."""
        if status == self.status and not values:
            return
        if self.is_finished:
            raise TransitionRefused(f"task {self.id} is {self.status}: it cannot become {status}")
        self.status = status
        self.version += 1
        for name, value in values.items():
            setattr(self, name, value)

    def _move(self, allowed: tuple[str, ...], to: str) -> None:
        if self.status not in allowed:
            raise TransitionRefused(f"task {self.id} is {self.status}: it cannot become {to}")
        self.status = to
        self.version += 1


#: the fields of a record, in order (its JSON keys)
FIELDS = tuple(f.name for f in fields(TaskRecord))
