"""A ``@task`` and an offloaded function the Django periodic tests schedule
through ``UWSGI_MULES["PERIODIC"]``."""

from __future__ import annotations

from uwsgi_mules import Mule

try:
    from django.tasks import task
except ImportError:  # Django < 6: the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]

RUNS: list[tuple[str, object]] = []


@task()
def report(due: str = "") -> str:
    RUNS.append(("report", due))
    return due


@Mule(1).offload()
def purge() -> None:
    RUNS.append(("purge", None))


def plain() -> None:
    """Neither a task nor offloaded."""
