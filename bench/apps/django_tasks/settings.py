"""Settings of the Django tasks benchmark (the port comes from ``BENCH_PORT``)."""

import os

SECRET_KEY = "bench-not-a-secret"
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["uwsgi_mules.contrib.django", "bench.apps.django_tasks"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.apps.django_tasks.views"
WSGI_APPLICATION = "bench.apps.django_tasks.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TASKS = {
    "default": {
        "BACKEND": "uwsgi_mules.contrib.django.tasks.MulesBackend",
        "OPTIONS": {"RESULTS": {"ITEMS": 5000, "BLOCKSIZE": 4096, "STORE": None}},
    }
}
UWSGI_MULES = {
    "MULES": 1,
    "LOCAL_MODE": "off",
    "INI": {"http-socket": f"127.0.0.1:{os.environ.get('BENCH_PORT', '8000')}", "processes": 1, "need-app": True},
}
