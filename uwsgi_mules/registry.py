"""Find offloaded functions by their full import path.

A task is named ``"package.module:Qualified.name"``, so two functions named
``send`` in two apps never collide, and a mule that has not imported the
module yet (``lazy-apps``, programmed mules) imports it on first use.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from .errors import NotOffloadable

#: attribute of an offload wrapper that holds the original function
ORIGINAL_ATTR = "__uwsgi_mules_original__"


class TaskNotFound(LookupError):
    """The path names no importable function."""


def function_path(func: Callable[..., Any]) -> str:
    """The import path of ``func``; raise :class:`NotOffloadable` for functions
    a mule could never import (lambdas, nested functions, builtins without a
    module)."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not callable(func) or not module or not qualname:
        raise NotOffloadable(f"{func!r} has no importable module/qualified name")
    if qualname == "<lambda>" or "<lambda>" in qualname:
        raise NotOffloadable(f"cannot offload a lambda ({module}:{qualname}): a mule cannot import it")
    if "<locals>" in qualname:
        raise NotOffloadable(
            f"cannot offload nested function {module}:{qualname}: a mule cannot import it; "
            "define it at module level"
        )
    return f"{module}:{qualname}"


class TaskRegistry:
    """Resolves task paths to callables, importing modules when needed.

    Resolution is cached; :meth:`reset` clears the cache (tests).
    """

    def __init__(self) -> None:
        self._cache: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def resolve(self, path: str) -> Callable[..., Any]:
        found = self._cache.get(path)
        if found is not None:
            return found
        module_name, sep, qualname = path.partition(":")
        if not sep or not module_name or not qualname:
            raise TaskNotFound(f"invalid task path {path!r}: expected 'module:qualname'")
        try:
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
        except ImportError as exc:
            raise TaskNotFound(f"cannot import module {module_name!r} for task {path}: {exc}") from exc
        target: Any = module
        for part in qualname.split("."):
            try:
                target = getattr(target, part)
            except AttributeError as exc:
                raise TaskNotFound(f"module {module_name!r} has no {qualname!r} (task {path})") from exc
        target = getattr(target, ORIGINAL_ATTR, target)
        if not callable(target):
            raise TaskNotFound(f"task {path} is not callable")
        with self._lock:
            self._cache[path] = target
        return target

    def reset(self) -> None:
        with self._lock:
            self._cache.clear()
