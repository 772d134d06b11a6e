"""A ``@task`` and an offloaded function the Django periodic tests schedule
through ``UWSGI_MULES["PERIODIC"]``."""

from __future__ import annotations

import json
import os

from uwsgi_mules import Mule

try:
    from django.tasks import task
except ImportError:  # Django < 6: the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]

RUNS: list[tuple[str, object]] = []


@task()
def report(due: str = "") -> str:
    """Recorded in ``RUNS``, and in the file ``$PERIODIC_LEDGER`` (one JSON line) when set."""
    RUNS.append(("report", due))
    ledger = os.environ.get("PERIODIC_LEDGER")
    if ledger:
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps({"due": due, "pid": os.getpid()}) + "\n").encode())
        finally:
            os.close(fd)
    return due


@task()
def add_one(n: int = 0) -> int:
    return n + 1


@Mule(1).offload()
def purge() -> None:
    RUNS.append(("purge", None))


def plain() -> None:
    """Neither a task nor offloaded."""
