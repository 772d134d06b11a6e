"""Programmed-mule entry point for Django: ``mule = uwsgi_mules.contrib.django.mule:run``.

The mule sets Django up once (``django.setup()``: settings, logging, apps,
and so every app's ``mules.py``), drops database connections inherited from
the master, then serves messages like :func:`uwsgi_mules.mule.run`. Around
each message it does what Django does around a request: reset the query log
and close database connections that are broken or older than
``CONN_MAX_AGE``, before and after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ...backends.base import Backend
from ...backends.selection import current_backend
from ...mule.loop import MuleLoop
from ...mule.server import run_loop

__all__ = ["close_old_connections", "django_mule_loop", "run", "setup_django"]


def setup_django() -> None:
    """Call ``django.setup()`` unless the apps are already loaded (a mule
    forked from a master that loaded the project)."""
    import os

    import django
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    if apps.ready:
        return
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        from django.conf import settings

        if not settings.configured:
            raise ImproperlyConfigured(
                "the Django mule needs DJANGO_SETTINGS_MODULE: add "
                "'env = DJANGO_SETTINGS_MODULE=yourproject.settings' to the uWSGI config "
                "(manage.py uwsgi_mules_ini renders it)"
            )
    django.setup()


def close_old_connections() -> None:
    """Django's ``close_old_connections`` for a mule: reset the query log and
    close connections that are unusable or past ``CONN_MAX_AGE``. A
    connection inside an atomic block (a caller's transaction, in the fake's
    step mode) is left alone."""
    from django.db import connections, reset_queries

    reset_queries()
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def discard_inherited_connections() -> None:
    """Forget database connections opened before the fork without closing
    them: the socket is shared with the master, and closing it here would
    end the master's session too."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block:
            connection.connection = None


@contextlib.contextmanager
def _django_task() -> Iterator[None]:
    """What Django does around a request, around each task."""
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def django_mule_loop(backend: Backend, mule_id: int | None = None, **kwargs: Any) -> MuleLoop:
    """The loop of a Django mule: :class:`~uwsgi_mules.mule.loop.MuleLoop`
    with Django's connection clean-up around each task (the fake drives it
    in step mode and in its threads, as a real mule's :func:`run` does)."""
    return MuleLoop(backend, mule_id, around=_django_task, label="Django mule", **kwargs)


def run() -> None:
    """Set Django up, then serve offloaded calls with the delivery guarantees of
    :func:`uwsgi_mules.mule.run` (saved at a reload or a stop, crashes named,
    ``mule-harakiri`` armed around each task)."""
    setup_django()
    discard_inherited_connections()
    run_loop(django_mule_loop(current_backend()))


#: the fake drives this loop itself (its step mode and its threads) instead of calling run()
run.mule_loop = django_mule_loop  # type: ignore[attr-defined]
