"""``@task`` functions of the MulesBackend tests; every call is recorded by the
mule that ran it in ``RUNS`` (in-process tests) and returned (real tests)."""

from __future__ import annotations

import asyncio
import os
import time

from uwsgi_mules import Mule

try:
    from django.tasks import task
except ImportError:  # Django < 6: the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]

#: (task name, arguments) of every run in this process
RUNS: list[tuple[str, object]] = []


class TaskBroke(Exception):
    """Raised by :func:`fail`."""


class TaskFlaked(Exception):
    """Raised by :func:`flaky` (the tests' RETRY_ON)."""


@task()
def add(a: int, b: int) -> int:
    RUNS.append(("add", (a, b)))
    return a + b


@task()
def fail(message: str) -> None:
    RUNS.append(("fail", message))
    raise TaskBroke(message)


@task(queue_name="notes")
def where(tag: str) -> dict[str, object]:
    """Which mule ran it (queue "notes": the farm of that name)."""
    RUNS.append(("where", tag))
    return {"tag": tag, "mule": Mule.get_current_id(), "pid": os.getpid()}


@task()
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    RUNS.append(("async_add", (a, b)))
    return a + b


@task(takes_context=True)
def with_context(context, value: str) -> dict[str, object]:  # noqa: ANN001 - Django's TaskContext
    RUNS.append(("with_context", value))
    return {"attempt": context.attempt, "id": context.task_result.id, "value": value}


@task()
def count(n: int, seconds: float = 0.0) -> int:
    """The delivery test's task: appends ``<n> <pid>`` to ``TASKS_SITE_RUNS``
    (one line per run), takes ``seconds``, returns its number."""
    runs = os.environ.get("TASKS_SITE_RUNS")
    if runs:
        with open(runs, "a", encoding="ascii") as fh:
            fh.write(f"{n} {os.getpid()}\n")
    time.sleep(seconds)
    return n


@task(takes_context=True)
def flaky(context, fail_times: int) -> int:  # noqa: ANN001 - Django's TaskContext
    """Raises TaskFlaked on its first ``fail_times`` attempts; returns the attempt that succeeded."""
    RUNS.append(("flaky", context.attempt))
    if context.attempt <= fail_times:
        raise TaskFlaked(f"attempt {context.attempt}")
    return context.attempt


@task(takes_context=True)
def crash_once(context) -> int:  # noqa: ANN001 - Django's TaskContext
    """Its mule dies during the first attempt (the fake's SimulatedCrash); returns the attempt."""
    from uwsgi_mules.backends.base import SimulatedCrash

    RUNS.append(("crash_once", context.attempt))
    if context.attempt == 1:
        raise SimulatedCrash
    return context.attempt


@task()
def interrupt(message: str) -> None:
    """Raises KeyboardInterrupt (Django's ImmediateBackend lets it through to the caller)."""
    RUNS.append(("interrupt", message))
    raise KeyboardInterrupt(message)
