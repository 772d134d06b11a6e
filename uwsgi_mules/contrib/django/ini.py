"""Render the project's uWSGI config from ``settings.UWSGI_MULES``.

The same settings describe the mules the INI starts, the layout the local
backend fakes (:mod:`uwsgi_mules.contrib.django.local`) and the layout test
fakes get from :func:`fake_options`.
"""

from __future__ import annotations

import os
from typing import Any

from ...config import Section
from .conf import MulesSettings, get_settings
from .local import topology_from_settings
from .tasks.settings import results_caches

__all__ = ["build_section", "fake_options", "wsgi_module"]


def wsgi_module(wsgi_application: str) -> str:
    """``"site.wsgi.application"`` (``WSGI_APPLICATION``) as uWSGI's ``module``
    value ``"site.wsgi:application"``."""
    module, _, attr = wsgi_application.rpartition(".")
    if not module or not attr:
        raise ValueError(f"WSGI_APPLICATION must be 'package.module.callable', not {wsgi_application!r}")
    return f"{module}:{attr}"


def build_section(settings: MulesSettings | None = None, *, settings_module: str | None = None) -> Section:
    """A :class:`~uwsgi_mules.config.Section` for this project.

    It has a master, the project's WSGI application (``WSGI_APPLICATION``),
    ``DJANGO_SETTINGS_MODULE`` in the environment of every process, the mules
    and farms of ``UWSGI_MULES`` and then every ``UWSGI_MULES["INI"]``
    option in order (a list value repeats the option).
    """
    from django.conf import settings as django_settings
    from django.core.exceptions import ImproperlyConfigured

    mules_settings = settings or get_settings()
    options = dict(mules_settings.ini)
    if str(options.get("lazy-apps", "")).lower() in ("true", "1", "yes", "on"):
        raise ImproperlyConfigured(
            "UWSGI_MULES['INI']: lazy-apps is not supported by the Django mule entry point "
            "(uWSGI 2.0 crashes 'module:callable' mules with lazy-apps); load the app in the master"
        )
    settings_module = settings_module or os.environ.get("DJANGO_SETTINGS_MODULE") or getattr(
        django_settings, "SETTINGS_MODULE", None
    )
    if not settings_module:
        raise ImproperlyConfigured("cannot tell the settings module: set DJANGO_SETTINGS_MODULE")
    wsgi_application = getattr(django_settings, "WSGI_APPLICATION", None)
    if not wsgi_application:
        raise ImproperlyConfigured("WSGI_APPLICATION is not set")

    section = Section()
    topology = topology_from_settings(mules_settings)  # validates the layout
    for key, value in mules_settings.ini:
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            section.set_option(key, item, multi=isinstance(value, tuple))
    if "module" not in options and "wsgi-file" not in options:
        section.python.set_wsgi_params(module=wsgi_module(wsgi_application))
    section.set_env("DJANGO_SETTINGS_MODULE", settings_module)
    workers = section.workers
    workers.set_mules_params(
        [spec.program for spec in topology.mules],
        farms=[workers.mule_farm(farm.name, list(farm.mules)) for farm in topology.farms],
        msg_buffer=mules_settings.msg_buffer,
        msg_buffer_recv=mules_settings.msg_buffer_recv,
    )
    for results in results_caches():  # Django tasks: results survive a graceful reload (store=)
        section.options.set("cache2", results.cache2_value(), multi=True)
    return section


def fake_options(settings: MulesSettings | None = None, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``FakeUwsgi`` with the project's layout (and the
    results caches of ``TASKS``); return it from a ``uwsgi_fake_options``
    fixture so tests fake the real mules."""
    caches = [results.spec for results in results_caches()]
    return {"topology": topology_from_settings(settings), "caches": caches, **overrides}
