"""Which backend the typed layer uses.

Order: the most recently activated backend (a fake, or anything passed to
:func:`activate`), else the real ``uwsgi`` module when running under uWSGI,
else :class:`~uwsgi_mules.errors.BackendUnavailable` with instructions.
"""

from __future__ import annotations

import importlib
import sys
import threading

from ..errors import BackendUnavailable
from .base import Backend

HOW_TO_ACTIVATE = (
    "uwsgi-mules found no uWSGI here. Run under uWSGI (or pyuwsgi), or activate the "
    "fake backend: `with FakeUwsgi(mules=2): ...` (from uwsgi_mules.fake), or use the "
    "`uwsgi_fake` pytest fixture. Signals, timers and cron register at import (in the "
    "master, as uWSGI routes them): import such modules with the fake active, e.g. "
    "inside the `uwsgi_dropin` fixture or with uwsgi_mules.testing.dropin."
)

#: marker attribute of modules that pretend to be ``uwsgi`` (the drop-in fake)
FAKE_MODULE_MARKER = "__uwsgi_mules_fake__"


class BackendSelector:
    """A stack of activated backends plus the lazily created real one."""

    def __init__(self) -> None:
        self._stack: list[Backend] = []
        self._real: Backend | None = None
        self._lock = threading.Lock()
        #: ``import uwsgi`` failed once: outside uWSGI it never succeeds later
        #: (a drop-in module is found in sys.modules), and a failing import
        #: costs ~0.1 ms per call (routed offloads from Celery workers, scripts)
        self._import_failed = False

    def activate(self, backend: Backend) -> None:
        with self._lock:
            self._stack.append(backend)

    def deactivate(self, backend: Backend) -> None:
        with self._lock:
            for index in range(len(self._stack) - 1, -1, -1):
                if self._stack[index] is backend:
                    del self._stack[index]
                    return
        raise ValueError(f"{backend!r} is not active")

    def current(self) -> Backend:
        stack = self._stack
        if stack:
            return stack[-1]
        real = self._real
        if real is None:
            real = self._load_real()
            if real.is_real:
                self._real = real
        return real

    def _load_real(self) -> Backend:
        module = sys.modules.get("uwsgi")
        if module is None:
            if self._import_failed:
                raise BackendUnavailable(HOW_TO_ACTIVATE)
            try:
                module = importlib.import_module("uwsgi")
            except ImportError:
                self._import_failed = True
                raise BackendUnavailable(HOW_TO_ACTIVATE) from None
        fake_backend = getattr(module, FAKE_MODULE_MARKER, None)
        if fake_backend is not None:
            return fake_backend
        if not hasattr(module, "mule_msg"):
            raise BackendUnavailable(
                f"the importable 'uwsgi' module ({getattr(module, '__file__', module)!r}) "
                "is not uWSGI's embedded module. " + HOW_TO_ACTIVATE
            )
        from ..layout.pyuwsgi_check import warn_without_binary_path
        from .real import RealBackend

        real = RealBackend(module)
        warn_without_binary_path(module, real.log)  # pyuwsgi in a virtualenv: say now what a reload will do
        return real

    def reset(self) -> None:
        with self._lock:
            self._stack.clear()
            self._real = None
            self._import_failed = False


_selector = BackendSelector()
#: the selector's stack (changed in place, never replaced), read on every offload
_stack = _selector._stack


def current_backend() -> Backend:
    """The backend the typed layer uses now."""
    if _stack:
        return _stack[-1]
    return _selector._real or _selector.current()


def selection_state() -> tuple[list[Backend], BackendSelector]:
    """What :func:`current_backend` reads: the stack of activated backends
    (changed in place) and the selector (``_real``: the cached real backend),
    for offload wrappers that compare them with a prepared backend per call."""
    return _stack, _selector


def activate(backend: Backend) -> None:
    """Make ``backend`` current until :func:`deactivate` (stackable)."""
    _selector.activate(backend)


def deactivate(backend: Backend) -> None:
    _selector.deactivate(backend)


def reset_backends() -> None:
    """Forget activated backends and the cached real one (tests)."""
    _selector.reset()
