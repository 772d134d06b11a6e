"""The Celery task that runs uwsgi-mules offloads on Celery workers."""

from __future__ import annotations

import weakref
from typing import Any

from ...runtime.routing import resolve_offloaded

#: name of the task in every Celery app (one task runs every offloaded function)
TASK_NAME = "uwsgi_mules.run"

_installed: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def run_offloaded(path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run the offloaded function ``path`` (``module:qualname``) here.

    Only functions decorated for offloading run: any other path raises
    :class:`~uwsgi_mules.core.registry.TaskNotFound` (a message on the broker can
    never call an arbitrary importable function).
    """
    return resolve_offloaded(path)(*args, **kwargs)


def install(app: Any) -> Any:
    """Register the offload task in the Celery ``app`` (idempotent) and return it.

    It acknowledges late and rejects on a lost worker: a worker killed
    mid-task leaves the message unacknowledged and the broker redelivers it
    (with Redis after ``broker_transport_options["visibility_timeout"]``).
    Results are stored only for calls made with ``func.submit()``.
    """
    task = _installed.get(app)
    if task is None:
        task = app.task(
            name=TASK_NAME,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            typing=False,
            shared=False,
        )(run_offloaded)
        _installed[app] = task
    return task
