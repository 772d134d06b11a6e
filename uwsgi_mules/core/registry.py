"""The registry of offloadable tasks.

A task is named ``"package.module:Qualified.name"``, so two functions named
``send`` in two apps never collide. A function becomes a task when it is
decorated for offloading (``mule_offload``, ``Mule.offload``,
``Farm.offload``, ``mulefunc``, the Django ``mules.py`` functions): the
decorator registers it in every process that imports its module. A mule
runs only registered tasks: it never imports a module or calls a callable
because a message names it. Mules that do not load the application
(``lazy-apps``) import the modules listed in ``UWSGIMULES_TASK_MODULES``
(or ``shared-import`` them).
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import NotOffloadable

#: attribute of an offload wrapper that holds the original function
ORIGINAL_ATTR = "__uwsgi_mules_original__"
#: environment variable listing task modules a mule imports at start (comma-separated)
TASK_MODULES_ENV = "UWSGIMULES_TASK_MODULES"


class TaskNotFound(LookupError):
    """The path names no registered task."""


class UnregisteredTask(TaskNotFound):
    """A message named a function that was never decorated for offloading in this process."""


def function_path(func: Callable[..., Any]) -> str:
    """The import path of ``func``; raise :class:`NotOffloadable` for functions
    a mule could never import (lambdas, nested functions, functions of
    ``__main__``, bound methods, builtins without a module)."""
    if inspect.ismethod(func):
        raise NotOffloadable(
            f"cannot offload the bound method {func!r}: a mule cannot rebuild its instance; "
            "offload a module-level function that takes an id and loads the object"
        )
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not callable(func) or not module or not qualname or not isinstance(qualname, str):
        raise NotOffloadable(f"{func!r} has no importable module/qualified name")
    if qualname == "<lambda>" or "<lambda>" in qualname:
        raise NotOffloadable(f"cannot offload a lambda ({module}:{qualname}): a mule cannot import it")
    if "<locals>" in qualname:
        raise NotOffloadable(
            f"cannot offload nested function {module}:{qualname}: a mule cannot import it; "
            "define it at module level"
        )
    if module == "__main__":
        raise NotOffloadable(
            f"cannot offload {qualname} of __main__: a mule has another __main__; "
            "move the function into an importable module"
        )
    return f"{module}:{qualname}"


class TaskRegistry:
    """Maps task paths to the functions registered by the offload decorators."""

    def __init__(self) -> None:
        self._tasks: dict[str, Callable[..., Any]] = {}
        self._module_errors: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def tasks(self) -> dict[str, Callable[..., Any]]:
        """The registered tasks (path -> function); read it, do not change it."""
        return self._tasks

    def register(self, path: str, func: Callable[..., Any]) -> None:
        """Make ``func`` runnable under ``path`` in this process."""
        with self._lock:
            self._tasks[path] = func

    def unregister(self, path: str) -> None:
        with self._lock:
            self._tasks.pop(path, None)

    def is_registered(self, path: str) -> bool:
        return path in self._tasks

    def resolve(self, path: str) -> Callable[..., Any]:
        """The function registered under ``path``; :class:`UnregisteredTask` otherwise."""
        try:
            return self._tasks[path]
        except (KeyError, TypeError):
            raise UnregisteredTask(
                f"unregistered task {path!r}: no function was decorated for offloading under that name "
                f"in this process (import its module in the application, shared-import it, or list it "
                f"in {TASK_MODULES_ENV})"
            ) from None

    def import_modules(self, names: Iterable[str]) -> list[str]:
        """Import task modules once; return an error line for each that fails
        (a failing module is tried once per process, then reported from a cache)."""
        errors = []
        for name in names:
            name = name.strip()
            if not name:
                continue
            if name in self._module_errors:
                errors.append(self._module_errors[name])
                continue
            try:
                importlib.import_module(name)
            except BaseException as exc:  # a task module must not kill the mule (Ctrl-C still does)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                line = f"task module {name!r} failed to import: {type(exc).__name__}: {exc}"
                self._module_errors[name] = line
                errors.append(line)
        return errors

    def reset(self) -> None:
        """Forget cached import errors (registrations stay: they are definitions)."""
        with self._lock:
            self._module_errors.clear()
