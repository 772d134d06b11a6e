"""Routes from configuration (Django's ``UWSGI_MULES["ROUTES"]``)."""

from __future__ import annotations

from collections.abc import Iterable

from .mule import load_app
from .routes import CeleryRoute, route


def apply_routes(routes: Iterable[tuple[int | str, str, str | None]]) -> list[CeleryRoute]:
    """Route each ``(target, "module:app", queue or None)`` to its Celery app."""
    made: list[CeleryRoute] = []
    for target, app_path, queue in routes:
        made += route(load_app(app_path), target, queue=queue)
    return made
