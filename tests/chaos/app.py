"""The WSGI application of the chaos suite on real uWSGI: ``POST /call``
runs a function in a worker (:mod:`tests.support.calls`); importing the
tasks here registers them in the master, so every mule has them."""

from __future__ import annotations

from tests.chaos import tasks  # noqa: F401  (registers the chaos tasks)
from tests.support.calls import call_application as application

__all__ = ["application"]
