"""Which ``settings.TASKS`` entries are MulesBackends, and their options,
read without importing Django's task framework (so that the INI command and
the fakes work on any Django version)."""

from __future__ import annotations

import sys
from typing import Any

from django.utils.module_loading import import_string

from .options import BackendOptions, ResultsOptions, parse_options

BACKEND_MODULE = "uwsgi_mules.contrib.django.tasks.backend"


def is_mules_backend(path: Any) -> bool:
    """True when ``path`` (a ``BACKEND`` value) names MulesBackend or a subclass."""
    if not isinstance(path, str) or not path:
        return False
    if path.startswith("uwsgi_mules.contrib.django.tasks"):
        return True
    try:
        cls = import_string(path)
    except ImportError:
        return False  # not ours; Django reports it when the backend is used
    module = sys.modules.get(BACKEND_MODULE)
    return module is not None and isinstance(cls, type) and issubclass(cls, module.MulesBackend)


def mules_backends() -> dict[str, BackendOptions]:
    """``{alias: options}`` of every MulesBackend in ``settings.TASKS``."""
    from django.conf import settings

    tasks = getattr(settings, "TASKS", None) or {}
    return {
        alias: parse_options(alias, params.get("OPTIONS"))
        for alias, params in tasks.items()
        if isinstance(params, dict) and is_mules_backend(params.get("BACKEND"))
    }


def results_caches() -> list[ResultsOptions]:
    """The results caches the MulesBackends need (one per cache name)."""
    found: dict[str, ResultsOptions] = {}
    for options in mules_backends().values():
        found.setdefault(options.results.cache, options.results)
    return list(found.values())
