"""WSGI app of the real-uWSGI contract harness: ``POST /call`` runs a
function in the worker (see :func:`tests.support.calls.call_application`)."""

from __future__ import annotations

import tests.contract.tasks  # noqa: F401 - decorates the offloaded functions (installs the hook)
from tests.support.calls import call_application as application

__all__ = ["application"]
