"""Routes: offload targets sent to a distributed engine instead of local mules.

The core only keeps the table; an integration (``uwsgi_mules.contrib.celery``)
registers :class:`RemoteRoute` objects in it. Offload wrappers look a target
up only when they refresh their cached validation: every change of the table
marks the caches they registered with :meth:`RouteTable.watch` stale, so an
unrouted offload pays nothing per call for routing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..core.state import runtime_state
from .targets import Target


class ResultHandle(Protocol):
    """What ``func.submit(...)`` returns (local mules and routes alike)."""

    @property
    def id(self) -> str: ...

    def ready(self) -> bool: ...

    def result(self, timeout: float | None = None) -> Any: ...


class RemoteRoute(Protocol):
    """Where a routed target's calls go."""

    def send(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Fire and forget; True once the engine accepted the call, else raise."""

    def submit(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ResultHandle:
        """Send and return a handle on the result."""

    def describe(self) -> str: ...


class RouteCache:
    """The one-slot cache of an offload wrapper: what it prepared for the last
    backend it sent through (any object with a ``backend`` attribute), or
    None. The route table empties it whenever routes change."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: Any = None


class RouteTable:
    """Targets routed elsewhere; thread-safe."""

    def __init__(self) -> None:
        self._routes: dict[Target, RemoteRoute] = {}
        self._lock = threading.Lock()
        #: the caches of offload wrappers (module-level functions: a bounded set)
        self._watched: list[RouteCache] = []

    def watch(self, cache: RouteCache) -> None:
        """Empty ``cache`` whenever the table changes."""
        with self._lock:
            self._watched.append(cache)

    def _changed(self) -> None:
        for cache in self._watched:
            cache.entry = None  # atomic: a concurrent caller keeps the entry it read, or prepares a new one

    def set(self, target: Target, route: RemoteRoute) -> None:
        with self._lock:
            self._routes[target] = route
            self._changed()

    def remove(self, target: Target) -> RemoteRoute | None:
        with self._lock:
            removed = self._routes.pop(target, None)
            self._changed()
            return removed

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()
            self._changed()

    def lookup(self, target: Target) -> RemoteRoute | None:
        return self._routes.get(target)

    def items(self) -> list[tuple[Target, RemoteRoute]]:
        with self._lock:
            return list(self._routes.items())


_table = RouteTable()


def route_table() -> RouteTable:
    """The process-wide route table."""
    return _table


def reset_routes() -> None:
    """Send every target to local mules again (tests)."""
    _table.clear()


def send_unbacked(target: Target, path: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: Exception) -> bool:
    """An offload in a process without uWSGI (a Celery worker, a script):
    routed targets still go out; others raise ``error`` (BackendUnavailable)."""
    remote = _table.lookup(target)
    if remote is None:
        raise error
    return remote.send(path, args, kwargs)


def resolve_offloaded(path: str) -> Callable[..., Any]:
    """The function behind an offloaded task path.

    Only functions decorated for offloading resolve: anything else raises
    :class:`~uwsgi_mules.core.registry.TaskNotFound` (a route, or a message, can
    never run an arbitrary importable callable).
    """
    return runtime_state().registry.resolve(path)


__all__ = [
    "RemoteRoute",
    "ResultHandle",
    "RouteCache",
    "RouteTable",
    "reset_routes",
    "resolve_offloaded",
    "route_table",
    "send_unbacked",
]
