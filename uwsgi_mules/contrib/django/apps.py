"""The Django app: add ``"uwsgi_mules.contrib.django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class UwsgiMulesConfig(AppConfig):
    """On ``ready()``: apply ``UWSGI_MULES["SEND_TIMEOUT"]``, import every
    installed app's ``mules.py`` (and ``tasks.py`` when ``TASKS`` uses
    MulesBackend), route ``ROUTES`` to Celery and, outside uWSGI, activate
    the ``LOCAL_MODE`` backend."""

    name = "uwsgi_mules.contrib.django"
    label = "uwsgi_mules"
    verbose_name = "uWSGI mules"
    default = True

    def ready(self) -> None:
        from django.core.signals import request_started
        from django.utils.module_loading import autodiscover_modules

        from ... import configure
        from .conf import get_settings
        from .local import ensure_local_backend, ensure_local_backend_on_request

        settings = get_settings()
        if settings.send_timeout is not None:
            configure(send_timeout=settings.send_timeout)
        if settings.autodiscover:
            autodiscover_modules("mules")
        from .tasks.settings import mules_backends

        if mules_backends():  # Django tasks on mules: their @task functions register here
            from .tasks.compat import task_backends

            for alias in mules_backends():
                task_backends[alias]  # a bad OPTIONS raises now, not at the first enqueue
            from django.core import checks

            from .tasks.checks import check_mules_backends

            checks.register(check_mules_backends)
            if settings.autodiscover:
                autodiscover_modules("tasks")
        from .periodic import declare_from_settings  # UWSGI_MULES["PERIODIC"]: schedules

        declare_from_settings()
        if settings.routes:  # UWSGI_MULES["ROUTES"]: targets sent to Celery
            from ..celery.settings import apply_routes

            apply_routes(settings.routes)
        if settings.local_mode != "off" and ensure_local_backend() is not None:
            request_started.connect(ensure_local_backend_on_request, dispatch_uid="uwsgi_mules_local_backend")
