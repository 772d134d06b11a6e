"""The mule side: a registered ``@task`` runs through the one receive path.

When a ``@task`` function is defined for a :class:`MulesBackend` (Django
calls ``validate_task`` for it), a :class:`TaskRunner` is registered under
``task:<module path>`` in the offload registry, in every process that
imports the module (the Django mule imports every app's ``tasks.py``). The
mule's dispatcher runs it like any offload (signed, registered, decoded
once, in-flight record, retries); the runner records the worker, runs the
task with Django's signals and stores its outcome. The record's state
changes are the record's own (:mod:`.record`); whether a failed attempt is
retried is the dispatcher's decision, told to :meth:`TaskRunner.after_decision`
(:func:`uwsgi_mules.core.retry_policy.tell_decision`), never worked out here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ....backends.base import Backend, SimulatedCrash
from ....backends.selection import current_backend
from ....core.retry_policy import RETRY
from .calls import TaskHeader, call_task, error_of
from .compat import Task, task_backends, task_finished, task_started
from .records import RUNNING, ResultsFull, ResultStore, StaleResult, TaskRecord, worker_id

if TYPE_CHECKING:
    from .backend import MulesBackend

#: registry paths of Django tasks: ``task:`` + ``Task.module_path``
PATH_PREFIX = "task:"


def registry_path(task: Task) -> str:
    return PATH_PREFIX + task.module_path


class TaskRunner:
    """Registered for one ``@task`` function; the dispatcher calls it with
    ``(header, args, kwargs)`` from the envelope, and tells it what follows
    an attempt that raised (:meth:`after_decision`)."""

    __slots__ = ("_failed", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        self._failed = threading.local()  # .run: the attempt that raised, until the dispatcher decides

    def __repr__(self) -> str:
        return f"<TaskRunner {self.task.module_path}>"

    def __call__(self, header: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        parsed = TaskHeader.from_wire(header)
        backend: MulesBackend = task_backends[parsed.backend]
        if parsed.remote:  # on a Celery worker
            from .celery_route import run_on_celery

            return run_on_celery(backend, self.task, parsed, args, kwargs)
        run = TaskRun(backend, self.task, parsed, args, kwargs)
        self._failed.run = None
        try:
            run.call()
        except SimulatedCrash:
            raise  # the fake's simulated death: nothing is recorded, as when a real mule dies
        except KeyboardInterrupt:
            if not getattr(run.uwsgi, "lets_interrupts_through", False):
                self._failed.run = run
            raise  # inline (LOCAL_MODE): the caller gets it, the record stays RUNNING, as Django's ImmediateBackend
        except BaseException:
            self._failed.run = run
            raise  # the dispatcher logs it, decides on a retry and tells after_decision()
        return None

    def after_decision(self, exc: BaseException, outcome: str) -> None:
        """The dispatcher decided what follows the attempt that raised ``exc``:
        the record becomes READY when a retry follows, else FAILED."""
        run: TaskRun | None = getattr(self._failed, "run", None)
        self._failed.run = None
        if run is None:
            return
        try:
            run.failed(exc, will_retry=outcome == RETRY)
        except Exception as error:  # noqa: BLE001 - in the dispatcher's failure path: the mule must go on
            run.uwsgi.log(f"uwsgi-mules: the outcome of Django task {run.record.id} could not be recorded: "
                          f"{type(error).__name__}: {error}")


class TaskRun:
    """One attempt of a task in a mule: its record, Django's signals."""

    __slots__ = ("args", "backend", "kwargs", "record", "store", "task", "uwsgi")

    def __init__(self, backend: MulesBackend, task: Task, header: TaskHeader, args: list[Any],
                 kwargs: dict[str, Any]) -> None:
        self.backend, self.task, self.args, self.kwargs = backend, task, args, kwargs
        self.uwsgi: Backend = current_backend()
        self.store: ResultStore = backend.result_store(self.uwsgi)
        self.record = self.store.read(header.id) or TaskRecord(
            id=header.id, task_path=task.module_path, backend=header.backend, queue_name=header.queue_name,
            priority=header.priority, run_after=header.run_after, status=RUNNING, enqueued_at=header.enqueued_at,
            args=args, kwargs=kwargs,
        )

    def call(self) -> None:
        """RUNNING (``task_started``), the task, SUCCESSFUL (``task_finished``);
        an exception propagates with the record still RUNNING."""
        record = self.record
        if record.is_finished:  # sent again after it finished (its mule died before it said so): not run again
            self.uwsgi.log(f"uwsgi-mules: Django task {record.id} ({record.task_path}) is {record.status} "
                           "already: not run again")
            return
        record.start(worker_id(self.uwsgi), self.uwsgi.wall_time())
        _write(self.store, record)
        result = self.backend.to_task_result(record, self.task)
        task_started.send(type(self.backend), task_result=result)
        value = call_task(self.task, result, self.args, self.kwargs)
        record.succeed(value, self.uwsgi.wall_time())
        self._finished()

    def failed(self, exc: BaseException, *, will_retry: bool) -> None:
        """READY again (a retry follows) or FAILED (``task_finished``)."""
        self.record.fail(error_of(exc), self.uwsgi.wall_time(), will_retry=will_retry)
        if will_retry:
            _write(self.store, self.record)
        else:
            self._finished()

    def _finished(self) -> None:
        _write(self.store, self.record)
        task_finished.send(type(self.backend), task_result=self.backend.to_task_result(self.record, self.task))


def _write(store: ResultStore, record: TaskRecord) -> None:
    try:
        store.write(record)
    except (ResultsFull, StaleResult):
        pass  # logged by the store; the task still runs
