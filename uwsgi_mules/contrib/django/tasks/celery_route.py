"""Django tasks on a queue routed to Celery (``UWSGI_MULES["ROUTES"]``).

The sending side publishes the same registered runner through the route
(``CeleryRoute.submit``) and keeps the READY record with Celery's task id;
a Celery worker that set Django up runs the task with :func:`run_on_celery`
(the record's own transitions, :mod:`.record`)
(its outcome goes to Celery's result backend, not to the uWSGI cache, which
the worker does not share); ``get_result`` merges Celery's state into the
record.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ...celery.results import worker_of
from ...celery.routes import CeleryRoute
from .calls import TaskHeader, call_task, error_of
from .compat import Task, task_finished, task_started
from .record import FAILED, READY, RUNNING, SUCCESSFUL, TaskRecord

if TYPE_CHECKING:
    from .backend import MulesBackend

#: Celery states -> Django's (PENDING/RECEIVED/RETRY: waiting to run)
STATES = {"STARTED": RUNNING, "SUCCESS": SUCCESSFUL, "FAILURE": FAILED, "RETRY": READY}
#: worker of a failure, whose worker Celery's result does not name
UNKNOWN_WORKER = "celery"


def run_on_celery(backend: MulesBackend, task: Task, header: TaskHeader, args: list[Any],
                  kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run the task on this Celery worker with Django's signals; return what
    ``get_result`` needs (the exception propagates: Celery stores it)."""
    worker = f"celery:{socket.gethostname()}:{os.getpid()}"
    record = TaskRecord(
        id=header.id, task_path=task.module_path, backend=header.backend, queue_name=header.queue_name,
        priority=header.priority, run_after=header.run_after, status=READY, enqueued_at=header.enqueued_at,
        args=args, kwargs=kwargs,
    )
    record.start(worker, time.time())
    result = backend.to_task_result(record, task)
    task_started.send(type(backend), task_result=result)
    try:
        value = call_task(task, result, args, kwargs)
    except BaseException as exc:
        record.fail(error_of(exc), time.time(), will_retry=False)  # Celery's own retries are Celery's
        task_finished.send(type(backend), task_result=backend.to_task_result(record, task))
        raise
    record.succeed(value, time.time())
    task_finished.send(type(backend), task_result=backend.to_task_result(record, task))
    return {"return_value": record.return_value, "worker_id": worker, "started_at": record.started_at,
            "finished_at": record.finished_at}


def failed_worker(found: Any) -> str:
    """``celery:<node name>`` of the worker a failure ran on (Celery's
    extended result), else :data:`UNKNOWN_WORKER`."""
    worker = worker_of(found)
    return f"celery:{worker}" if worker else UNKNOWN_WORKER


def merge_celery_state(record: TaskRecord, route: Any) -> TaskRecord:
    """``record`` updated from Celery's result of its task (unchanged when
    the route is no longer a Celery route, or Celery knows nothing yet)."""
    if not isinstance(route, CeleryRoute) or record.remote_id is None:
        return record
    from celery.result import AsyncResult

    found = AsyncResult(record.remote_id, app=route.app)
    state = STATES.get(found.state)
    if state is None:
        return record
    if state == SUCCESSFUL and isinstance(found.result, dict):
        outcome = found.result
        started = outcome.get("started_at")
        record.observe_remote(state, return_value=outcome.get("return_value"),
                              worker_ids=[outcome.get("worker_id", UNKNOWN_WORKER)], started_at=started,
                              last_attempted_at=started, finished_at=outcome.get("finished_at"))
    elif state == FAILED:
        error = found.result
        kind = type(error) if isinstance(error, BaseException) else Exception
        done = found.date_done
        record.observe_remote(state, errors=[[f"{kind.__module__}.{kind.__qualname__}",
                                              found.traceback or repr(error)]],
                              worker_ids=record.worker_ids or [failed_worker(found)],
                              finished_at=done.timestamp() if done is not None else None)
    else:
        record.observe_remote(state)
    return record
