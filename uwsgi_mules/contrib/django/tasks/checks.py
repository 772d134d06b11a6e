"""System checks of the MulesBackends (queues without a reachable target).

Django 6 runs every task backend's ``check()`` itself (``django.tasks``);
the ``django-tasks`` backport does so only when its app is installed. This
check covers the other case, so ``manage.py check`` (and every command that
runs the checks, ``uwsgi_mules_ini`` included) reports the same errors on
every Django version.
"""

from __future__ import annotations

from typing import Any

from django.core import checks


def check_mules_backends(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.apps import apps

    from .compat import FRAMEWORK, task_backends
    from .settings import mules_backends

    if FRAMEWORK == "django.tasks" or apps.is_installed("django_tasks"):
        return []  # the framework checks every backend itself
    errors: list[checks.CheckMessage] = []
    for alias in mules_backends():
        errors.extend(task_backends[alias].check())
    return errors
