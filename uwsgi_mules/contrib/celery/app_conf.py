"""Settings the project applies to a routed Celery app, only where the app's
own configuration does not set them."""

from __future__ import annotations

from typing import Any


def user_set(app: Any, key: str) -> bool:
    """True when the app's configuration (not Celery's defaults) sets ``key``."""
    conf = app.conf
    conf.get(key)  # loads a pending configuration (config_from_object)
    maps = getattr(app.conf, "maps", None)
    if not maps:
        return key in conf
    return any(key in layer for layer in maps[:-1])


def set_default(app: Any, key: str, value: Any) -> bool:
    """Set ``key`` to ``value`` unless the app sets it; True when set here."""
    if user_set(app, key):
        return False
    app.conf[key] = value
    return True


def apply_route_defaults(app: Any) -> list[str]:
    """Every route (any broker): ``result_extended`` so a result names the
    worker that ran the task, failures included (``CeleryResult`` and
    Django's ``worker_ids``). Returns the settings applied."""
    return [key for key, value in {"result_extended": True}.items() if set_default(app, key, value)]
