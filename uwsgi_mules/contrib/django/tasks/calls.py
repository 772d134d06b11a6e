"""What a Django task message carries, and calling the task function
(shared by the mule side and the Celery side)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from .compat import Task, TaskContext, TaskResult, normalize_json


@dataclass(frozen=True)
class TaskHeader:
    """What a message carries besides the arguments (the envelope's first argument, as a dict)."""

    id: str
    backend: str
    queue_name: str
    priority: int
    run_after: float | None
    enqueued_at: float
    #: sent to Celery (``UWSGI_MULES["ROUTES"]``): the outcome goes to Celery's result backend
    remote: bool = False

    def wire(self) -> dict[str, Any]:
        wire = {"id": self.id, "backend": self.backend, "queue_name": self.queue_name,
                "priority": self.priority, "run_after": self.run_after, "enqueued_at": self.enqueued_at}
        if self.remote:
            wire["remote"] = True
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> TaskHeader:
        return cls(**data)


def call_task(task: Task, result: TaskResult, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run the task function (with its context when it takes one); its
    return value normalised to JSON, as Django's own backends do."""
    if task.takes_context:
        return normalize_json(task.call(TaskContext(task_result=result), *args, **kwargs))
    return normalize_json(task.call(*args, **kwargs))


def error_of(exc: BaseException) -> list[str]:
    """``[exception class path, traceback]`` of a record's ``errors``."""
    kind = type(exc)
    return [f"{kind.__module__}.{kind.__qualname__}", "".join(traceback.format_exception(exc))]
