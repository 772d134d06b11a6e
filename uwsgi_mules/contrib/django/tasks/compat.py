"""Django's task framework: ``django.tasks`` (Django 6) or the ``django-tasks``
backport (``django_tasks``, for Django 4.2 and 5.x).

Everything the backend uses from the framework is imported here once, so
the rest of the package reads the same names on every Django version.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:  # Django >= 6.0
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    FRAMEWORK = "django.tasks"
except ImportError:  # Django < 6: the backport, if installed
    try:
        from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task, TaskError
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json
    except ImportError as exc:
        import django

        raise ImproperlyConfigured(
            "uwsgi_mules.contrib.django.tasks.MulesBackend needs Django's task framework: "
            f"Django >= 6.0 (django.tasks; this is Django {django.get_version()}) or, on Django 4.2/5.x, "
            "the backport: pip install django-tasks"
        ) from exc
    FRAMEWORK = "django_tasks"

__all__ = [
    "FRAMEWORK",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultMismatch",
    "TaskResultStatus",
    "normalize_json",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]


def set_field(obj: Any, name: str, value: Any) -> None:
    """Set a field of Django's frozen ``TaskResult`` (as Django's own backends do)."""
    object.__setattr__(obj, name, value)
