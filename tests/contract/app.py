"""WSGI app of the real-uWSGI contract harness.

``POST /call`` with a pickled ``(path, args, kwargs)`` runs that function in
the worker and answers a pickled ``("ok", result)`` or ``("err", exc)``.
Test-only: it executes what it is sent, so it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import pickle
from typing import Any

import importlib

import tests.contract.tasks  # noqa: F401 - decorates the offloaded functions (installs the hook)


def _resolve(path: str) -> Any:
    """The object at ``module:qualname`` itself (an offload wrapper stays a wrapper)."""
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    path, args, kwargs = pickle.loads(environ["wsgi.input"].read(length))
    try:
        outcome: tuple[str, Any] = ("ok", _resolve(path)(*args, **kwargs))
    except Exception as exc:
        outcome = ("err", exc)
    body = pickle.dumps(outcome)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
