"""Configure Django for the in-process tests: the example site's settings,
two test apps, and ``LOCAL_MODE = "off"`` so that no local backend is
activated for the rest of the test session."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_DIR = REPO_ROOT / "examples" / "django_site"

#: what the tests change in the example's settings
TEST_UWSGI_MULES = {"LOCAL_MODE": "off"}


def tasks_framework() -> str | None:
    """``"django.tasks"`` (Django 6), ``"django_tasks"`` (the backport) or None."""
    import importlib.util

    for name in ("django.tasks", "django_tasks"):
        if importlib.util.find_spec(name.split(".")[0]) and importlib.util.find_spec(name):
            return name
    return None


#: the test changes to the example's TASKS: the tests' queues
TEST_TASKS = {
    "default": {
        "BACKEND": "uwsgi_mules.contrib.django.tasks.MulesBackend",
        "QUEUES": ["default", "notes", "mule2", "reports"],
        "OPTIONS": {"TARGETS": {"reports": "notes"}},  # the example's results cache: the INI stays its own
    }
}


def test_settings() -> dict[str, Any]:
    """The example site's settings with the test changes."""
    from django_site import settings as site

    values = {name: getattr(site, name) for name in dir(site) if name.isupper()}
    values["INSTALLED_APPS"] = [*site.INSTALLED_APPS, "tests.django.app_one", "tests.django.app_two"]
    if tasks_framework() is not None:
        values["INSTALLED_APPS"].append("tests.django.app_tasks")
        values["TASKS"] = TEST_TASKS
    values["UWSGI_MULES"] = {**site.UWSGI_MULES, **TEST_UWSGI_MULES}
    values["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    values["LOGGING_CONFIG"] = None  # leave pytest's log capture alone
    return values


def setup_django() -> None:
    """Idempotent: put the example site on sys.path, configure, setup."""
    import django
    from django.apps import apps
    from django.conf import settings

    if str(SITE_DIR) not in sys.path:
        sys.path.insert(0, str(SITE_DIR))
    if not settings.configured:
        settings.configure(**test_settings())
    if not apps.ready:
        django.setup()
