"""Django integration: add ``"uwsgi_mules.contrib.django"`` to ``INSTALLED_APPS``.

* every installed app's ``mules.py`` is imported when Django starts;
* ``mule = uwsgi_mules.contrib.django.mule:run`` is a programmed mule that
  sets Django up and manages database connections around each task;
* :func:`offload` (default target from settings, ``on_commit=True``) and
  :func:`offload_on_commit`;
* ``settings.UWSGI_MULES`` (see :mod:`uwsgi_mules.contrib.django.conf`);
* ``manage.py uwsgi_mules_ini`` renders the uWSGI config.

Importing this package does not import Django; its names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conf import DJANGO_ENTRY_POINT, MulesSettings, get_settings
    from .offloading import offload, offload_on_commit

__all__ = ["DJANGO_ENTRY_POINT", "MulesSettings", "get_settings", "offload", "offload_on_commit"]

_LAZY = {
    "DJANGO_ENTRY_POINT": "conf",
    "MulesSettings": "conf",
    "get_settings": "conf",
    "offload": "offloading",
    "offload_on_commit": "offloading",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
