"""A Django task for the chaos suite (Django's task framework on MulesBackend):
``enqueue()`` with and without ``run_after``. Imported once Django is set up."""

from __future__ import annotations

from datetime import datetime, timezone

from uwsgi_mules import current_attempt
from uwsgi_mules.backends.selection import current_backend

from . import ledger

try:
    from django.tasks import task
except ImportError:  # Django < 6: the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]


@task()
def chaos_django(call_id: str, due: float) -> None:
    ledger.append(call_id, ledger.DONE, current_attempt(), due, current_backend().wall_time())


def enqueue(call_id: str, due: float, *, delayed: bool) -> bool:
    """Enqueue one run of :func:`chaos_django` (``run_after`` = ``due`` when ``delayed``)."""
    if delayed:
        chaos_django.using(run_after=datetime.fromtimestamp(due, timezone.utc)).enqueue(call_id, due)
    else:
        chaos_django.enqueue(call_id, due)
    return True
