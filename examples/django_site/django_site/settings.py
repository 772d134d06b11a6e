"""Settings of the example site (for trying uwsgi-mules, not for production)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SITE_SECRET_KEY", "example-site-not-a-secret")
DEBUG = os.environ.get("DJANGO_SITE_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "uwsgi_mules.contrib.django",
    "notes",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"

# A file database: mules are other processes, they cannot see an in-memory one.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SITE_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "uwsgi_mules": {"handlers": ["console"], "level": "INFO"},
        "notes": {"handlers": ["console"], "level": "INFO"},
    },
}

# uwsgi-mules: two Django mules in farm "notes"; @offload() sends there.
# `python manage.py uwsgi_mules_ini -o ini/site.ini` renders the uWSGI config;
# run `uwsgi --ini ini/site.ini` from this directory (pythonpath = .).
UWSGI_MULES = {
    "SEND_TIMEOUT": 5.0,
    "DEFAULT_TARGET": "notes",
    "LOCAL_MODE": "inline",
    "MULES": 2,
    "FARMS": {"notes": [1, 2]},
    "INI": {
        "pythonpath": ".",
        "http-socket": "127.0.0.1:8000",
        "processes": 2,
        "die-on-term": True,
        "need-app": True,
    },
}

# Django tasks (Django 6, or the django-tasks backport on 4.2/5.x): @task
# functions of notes/tasks.py run on the same mules; queue "notes" goes to the
# farm of that name, "default" to the shared queue. Results live in a uWSGI
# cache saved to uwsgi-mules-tasks.cache (relative to where uWSGI starts), so
# they survive a graceful reload.
TASKS = {
    "default": {
        "BACKEND": "uwsgi_mules.contrib.django.tasks.MulesBackend",
        "QUEUES": ["default", "notes"],
    }
}

# Scaling out: with DJANGO_SITE_CELERY_BROKER=redis://host:6379/0 the farm
# "notes" is routed to Celery (django_site/celery.py) instead of local mules;
# run consumers with `celery -A django_site.celery worker -Q notes`, or as
# uWSGI mules (docs/scaling.md). Unset, everything stays on local mules.
if os.environ.get("DJANGO_SITE_CELERY_BROKER"):
    UWSGI_MULES["ROUTES"] = {"notes": {"APP": "django_site.celery:app"}}
