"""WSGI app of the signal tests under real uWSGI.

At import (in the master, before fork) it calls the setup named by
``SIGNAL_APP_SETUP`` (``module:function``). ``POST /call`` with a pickled
``(path, args, kwargs)`` runs that function in the worker and answers a
pickled ``("ok", result)`` or ``("err", exc)``. Test-only, 127.0.0.1 only.
"""

from __future__ import annotations

import os

from tests.support.calls import call_application as application
from tests.support.calls import resolve

__all__ = ["application", "resolve"]

_setup = os.environ.get("SIGNAL_APP_SETUP")
if _setup:
    resolve(_setup)()
