"""``UWSGI_MULES["PERIODIC"]``: schedules for Django tasks, by import path.

::

    UWSGI_MULES = {
        "PERIODIC": {
            "myapp.tasks.cleanup": {"CRON": "0 3 * * *", "TZ": "Europe/Paris", "CATCH_UP": "latest"},
            "myapp.tasks.sync_feeds": {"EVERY": 300, "CATCH_UP": "all", "JITTER": 10},
        },
    }

A path names a ``django.tasks`` ``@task`` (each run is ``task.enqueue()``,
through the task's backend: a MulesBackend records its result and retries
like any enqueue) or a function offloaded with uwsgi-mules (``@offload``,
``Mule(N).offload()``...: each run is an offload). Keys: ``CRON`` (5
fields, the ``cron`` extra) or ``EVERY`` (seconds or a ``timedelta``),
``TZ`` (default UTC), ``CATCH_UP`` (``"skip"``, ``"latest"``, ``"all"``),
``JITTER`` (seconds; offloads only), ``PASS_DUE`` (the run gets
``due=``: a datetime for an offload, an ISO 8601 string for a ``@task``,
whose arguments are JSON). Read in the app's ``ready()``, in every process
(the mule that schedules included); a bad entry raises
:class:`PeriodicSettingError` (an ``ImproperlyConfigured`` and a
``ValueError``) naming the path and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ...periodic import Schedule, declare
from ...periodic.entries import Entry, declare_django_task, is_django_task
from ...runtime.offload import offloading_of

KEYS = {"CRON", "EVERY", "TZ", "CATCH_UP", "JITTER", "PASS_DUE"}

__all__ = ["KEYS", "PeriodicSettingError", "declare_from_settings"]


class PeriodicSettingError(ImproperlyConfigured, ValueError):
    """A bad ``UWSGI_MULES["PERIODIC"]`` entry."""


def _schedule(path: str, spec: Any) -> Schedule:
    if not isinstance(spec, Mapping):
        raise PeriodicSettingError(f'UWSGI_MULES["PERIODIC"][{path!r}] must be a dict such as {{"EVERY": 300}}')
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise PeriodicSettingError(f'UWSGI_MULES["PERIODIC"][{path!r}] has unknown keys {unknown}; known: {sorted(KEYS)}')
    every: Any = spec.get("EVERY")  # the setting as written: Schedule.build says what is wrong with it
    if isinstance(every, (int, float)) and not isinstance(every, bool):
        every = timedelta(seconds=every)
    try:
        return Schedule.build(cron=spec.get("CRON"), every=every, tz=spec.get("TZ"),
                              catch_up=spec.get("CATCH_UP", "latest"), jitter=spec.get("JITTER", 0.0))
    except ValueError as exc:
        raise PeriodicSettingError(f'UWSGI_MULES["PERIODIC"][{path!r}]: {exc}') from exc


def declare_one(path: str, spec: Any) -> Entry:
    """Declare the entry of one ``PERIODIC`` item."""
    schedule = _schedule(path, spec)
    pass_due = bool(spec.get("PASS_DUE", False))
    try:
        target = import_string(path)
    except ImportError as exc:
        raise PeriodicSettingError(f'UWSGI_MULES["PERIODIC"][{path!r}]: cannot import it ({exc})') from exc
    offloading = offloading_of(target)
    if offloading is not None:
        return declare(offloading, schedule, pass_due=pass_due)
    if is_django_task(target):
        try:
            return declare_django_task(target, schedule, pass_due=pass_due)
        except ValueError as exc:
            raise PeriodicSettingError(f'UWSGI_MULES["PERIODIC"][{path!r}]: {exc}') from exc
    raise PeriodicSettingError(f'UWSGI_MULES["PERIODIC"][{path!r}] is neither a @task nor an offloaded function')


def declare_from_settings(raw: Any = None) -> list[Entry]:
    """Declare every entry of ``UWSGI_MULES["PERIODIC"]`` (``raw``: that
    dict; None: read it from the settings)."""
    if raw is None:
        from django.conf import settings

        raw = (getattr(settings, "UWSGI_MULES", None) or {}).get("PERIODIC") or {}
    if not isinstance(raw, Mapping):
        raise PeriodicSettingError('UWSGI_MULES["PERIODIC"] must map task paths to schedules')
    return [declare_one(str(path), spec) for path, spec in raw.items()]
