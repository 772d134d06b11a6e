"""The mule side: a registered ``@task`` runs through the one receive path.

When a ``@task`` function is defined for a :class:`MulesBackend` (Django
calls ``validate_task`` for it), a :class:`TaskRunner` is registered under
``task:<module path>`` in the offload registry, in every process that
imports the module (the Django mule imports every app's ``tasks.py``). The
mule's dispatcher runs it like any offload (signed, registered, decoded
once, in-flight record, retries); the runner records the worker, runs the
task with Django's signals and stores its outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ....backends.base import SimulatedCrash
from ....backends.selection import current_backend
from ....runtime.attempts import current_attempt
from .calls import TaskHeader, call_task, error_of
from .compat import Task, task_backends, task_finished, task_started
from .records import FAILED, READY, RUNNING, SUCCESSFUL, ResultsFull, TaskRecord, worker_id

if TYPE_CHECKING:
    from .backend import MulesBackend

#: registry paths of Django tasks: ``task:`` + ``Task.module_path``
PATH_PREFIX = "task:"


def registry_path(task: Task) -> str:
    return PATH_PREFIX + task.module_path


class TaskRunner:
    """Registered for one ``@task`` function; the dispatcher calls it with
    ``(header, args, kwargs)`` from the envelope."""

    __slots__ = ("task",)

    def __init__(self, task: Task) -> None:
        self.task = task

    def __repr__(self) -> str:
        return f"<TaskRunner {self.task.module_path}>"

    def __call__(self, header: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        parsed = TaskHeader.from_wire(header)
        backend: MulesBackend = task_backends[parsed.backend]
        if parsed.remote:  # on a Celery worker
            from .celery_route import run_on_celery

            return run_on_celery(backend, self.task, parsed, args, kwargs)
        run_task(backend, self.task, parsed, args, kwargs)
        return None


def run_task(backend: MulesBackend, task: Task, header: TaskHeader, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Record the worker (RUNNING), run the task, record SUCCESSFUL or FAILED;
    send ``task_started`` / ``task_finished``. A task that raises is recorded
    (FAILED, or READY again when ``RETRY_ON`` retries it), then its exception
    propagates to the dispatcher (logged, counted, retried)."""
    uwsgi = current_backend()
    store = backend.result_store(uwsgi)
    record = store.read(header.id) or TaskRecord(
        id=header.id, task_path=task.module_path, backend=header.backend, queue_name=header.queue_name,
        priority=header.priority, run_after=header.run_after, status=RUNNING, enqueued_at=header.enqueued_at,
        args=args, kwargs=kwargs,
    )
    now = uwsgi.wall_time()
    record.status = RUNNING
    record.started_at = record.started_at or now
    record.last_attempted_at = now
    record.worker_ids.append(worker_id(uwsgi))  # before the call: TaskContext.attempt counts this one
    _write(store, record)
    result = backend.to_task_result(record, task)
    task_started.send(type(backend), task_result=result)
    try:
        record.return_value = call_task(task, result, args, kwargs)
    except SimulatedCrash:
        raise  # the fake's simulated death: nothing is recorded, as when a real mule dies
    except BaseException as exc:
        policy = backend.mules_options.retry
        if policy.retries_on(exc) and current_attempt() <= policy.retries:
            record.status = READY  # the dispatcher runs it again after its backoff
        else:
            record.status = FAILED
            record.finished_at = uwsgi.wall_time()
        record.errors.append(error_of(exc))
        _write(store, record)
        if record.status == FAILED:
            task_finished.send(type(backend), task_result=backend.to_task_result(record, task))
        raise
    record.status = SUCCESSFUL
    record.finished_at = uwsgi.wall_time()
    _write(store, record)
    task_finished.send(type(backend), task_result=backend.to_task_result(record, task))


def _write(store: Any, record: TaskRecord) -> None:
    try:
        store.write(record)
    except ResultsFull:
        pass  # logged by the store; the task still runs
