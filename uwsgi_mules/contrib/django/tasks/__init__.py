"""A backend of Django's task framework (``django.tasks``, Django 6; or the
``django-tasks`` backport) that runs ``@task`` functions on uWSGI mules::

    TASKS = {"default": {"BACKEND": "uwsgi_mules.contrib.django.tasks.MulesBackend"}}

See docs/django.md, "Django tasks". ``MulesBackend`` loads on first use, so
the options and the settings helpers import on any Django version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import MulesBackend

__all__ = ["MulesBackend"]


def __getattr__(name: str) -> Any:
    if name == "MulesBackend":
        from .backend import MulesBackend

        return MulesBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
