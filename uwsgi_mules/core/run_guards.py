"""Guards a mule asks before it runs a call whose metadata carries their key.

A guard is called with the backend and the call's metadata and returns
True to run the call, False to skip it (having logged why). The dispatcher
asks :func:`admitted` for calls with metadata only (never for the plain
calls of the C receive loop). Registered by the features that need one:
the periodic scheduler's "one run per due time" (``meta["periodic"]``),
when :mod:`uwsgi_mules.periodic` is imported. This module imports nothing
of the package, so the dispatcher and the features do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (backend, meta) -> True to run the call
RunGuard = Callable[[Any, dict[str, Any]], bool]

_guards: dict[str, RunGuard] = {}

__all__ = ["RunGuard", "admitted", "register_run_guard"]


def register_run_guard(key: str, guard: RunGuard) -> None:
    """Ask ``guard`` before running a call whose metadata has ``key`` (one guard per key)."""
    _guards[key] = guard


def admitted(backend: Any, meta: dict[str, Any]) -> bool:
    """True unless a guard whose key ``meta`` carries says not to run the call."""
    return all(guard(backend, meta) for key, guard in _guards.items() if key in meta)
