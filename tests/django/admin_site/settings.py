"""A Django project with the admin and the "Mules" section (its own process:
the other Django tests configure the example site)."""

from __future__ import annotations

import os

SECRET_KEY = "admin-site-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "uwsgi_mules.contrib.django.monitor",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware", "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.django.admin_site.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages"]},
}]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
UWSGI_MULES_MONITOR = {"RUNTIME_DIR": os.environ.get("ADMIN_SITE_RUNTIME_DIR", "")}


def _tasks_framework() -> str | None:
    import importlib.util

    for name in ("django.tasks", "django_tasks"):
        if importlib.util.find_spec(name.split(".")[0]) and importlib.util.find_spec(name):
            return name
    return None


#: Django's dummy backend keeps results in memory: the section looks them up by id
TASKS = {"default": {"BACKEND": f"{_tasks_framework()}.backends.dummy.DummyBackend"}} if _tasks_framework() else {}
