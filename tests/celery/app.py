"""WSGI app of the real-uWSGI Celery tests: ``POST /call`` runs a function in the worker."""

from __future__ import annotations

import tests.celery.celery_app  # noqa: F401 - installs the task, routes "reports" when asked
import tests.celery.tasks  # noqa: F401 - decorates the offloaded functions
from tests.support.calls import call_application as application

__all__ = ["application"]
