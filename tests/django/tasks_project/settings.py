"""Settings of the tasks test project (the port, paths and queues come from the test)."""

from __future__ import annotations

import os

SECRET_KEY = "tasks-project-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["uwsgi_mules.contrib.django", "tests.django.app_tasks"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.django.tasks_project.urls"
WSGI_APPLICATION = "tests.django.tasks_project.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "uwsgi_mules": {"handlers": ["console"], "level": "INFO"},
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}

TASKS = {
    "default": {
        "BACKEND": "uwsgi_mules.contrib.django.tasks.MulesBackend",
        "QUEUES": ["default", "notes", "mule2"],
        "OPTIONS": {
            "RESULTS": {"ITEMS": 500, "BLOCKSIZE": 8192, "STORE": os.environ.get("TASKS_SITE_STORE", "results.cache")},
            "RETRIES": 2,
            "RETRY_ON": ["tests.django.app_tasks.tasks.TaskFlaked"],
            "RETRY_BACKOFF": 0.5,
            "RETRY_JITTER": False,
        },
    }
}

UWSGI_MULES = {
    "SEND_TIMEOUT": 10.0,
    "LOCAL_MODE": "off",
    "MULES": 2,
    "FARMS": {"notes": [1, 2]},
    "INI": {
        "http-socket": f"127.0.0.1:{os.environ.get('TASKS_SITE_PORT', '8000')}",
        "processes": 2,
        "die-on-term": True,
        "need-app": True,
        "touch-reload": os.environ.get("TASKS_SITE_TOUCH", "reload.touch"),
    },
}
