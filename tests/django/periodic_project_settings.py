"""The tasks test project with a periodic ``@task`` due every second."""

from __future__ import annotations

from tests.django.tasks_project.settings import *  # noqa: F403
from tests.django.tasks_project.settings import UWSGI_MULES as BASE

UWSGI_MULES = {**BASE, "PERIODIC": {"tests.django.periodic_tasks.report": {"EVERY": 1, "CATCH_UP": "all",
                                                                            "PASS_DUE": True}}}
