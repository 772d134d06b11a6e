"""WSGI entry module of the demo (like a Django project's ``wsgi.py``, it
sets the process up when uWSGI loads it)."""

from __future__ import annotations

from collections.abc import Callable

from . import tasks

tasks.install()


def application(environ: dict[str, object], start_response: Callable[[str, list[tuple[str, str]]], object]) -> list[bytes]:
    """A minimal WSGI app (the demo sends no HTTP requests)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"uwsgi-mules demo\n"]
