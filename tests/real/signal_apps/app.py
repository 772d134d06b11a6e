"""WSGI app of the signal tests under real uWSGI.

At import (in the master, before fork) it calls the setup named by
``SIGNAL_APP_SETUP`` (``module:function``). ``POST /call`` with a pickled
``(path, args, kwargs)`` runs that function in the worker and answers a
pickled ``("ok", result)`` or ``("err", exc)``. Test-only, 127.0.0.1 only.
"""

from __future__ import annotations

import importlib
import os
import pickle
from typing import Any


def resolve(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


_setup = os.environ.get("SIGNAL_APP_SETUP")
if _setup:
    resolve(_setup)()


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    path, args, kwargs = pickle.loads(environ["wsgi.input"].read(length))
    try:
        outcome: tuple[str, Any] = ("ok", resolve(path)(*args, **kwargs))
    except Exception as exc:
        outcome = ("err", exc)
    body = pickle.dumps(outcome)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
