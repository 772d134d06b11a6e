"""Results of offloaded calls: ``func.submit(...)`` and the local result store.

On local mules a submitted call travels as an envelope whose metadata names
a result key (``meta["result"]``); the mule runs the task and stores its
outcome (:mod:`uwsgi_mules.mule.results`) with :func:`store_result` in a uWSGI cache (``cache2``, name
:data:`~uwsgi_mules.layout.caches.RESULTS_CACHE`; render it with
``Section.set_results_cache()``). The caller's :class:`LocalResult` polls
that cache. Values expire (``result_expires`` seconds, default 600) so
results nobody reads do not fill the cache. Plain calls (``func(...)``)
store nothing.
"""

from __future__ import annotations

import pickle
import time
import traceback
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import envelope
from ..backends.base import Backend
from ..backends.selection import current_backend
from ..errors import MulesError
from ..layout.caches import RESULTS_CACHE
from .result_records import UnsignedResult, open_result, seal_result
from .routing import ResultHandle, route_table
from .sender import send_bytes
from .targets import Target


class RemoteTaskError(MulesError):
    """The task raised where it ran (a mule, a Celery worker).

    ``remote_type`` is the exception's ``module.QualName``,
    ``remote_message`` its message, ``remote_traceback`` the traceback text.
    """

    def __init__(self, remote_type: str, remote_message: str, remote_traceback: str = "") -> None:
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        text = f"{remote_type}: {remote_message}"
        if remote_traceback:
            text += f"\n\nRemote traceback:\n{remote_traceback.rstrip()}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.remote_type, self.remote_message, self.remote_traceback))


class UntrustedResult(MulesError, ValueError):
    """The cache holds, under a result's key, bytes this instance did not
    sign for that key (a forgery, a value of another instance): never unpickled."""


class ResultTimeout(MulesError, TimeoutError):
    """No result arrived within the timeout (the task may still be running)."""


class ResultsUnavailable(MulesError, RuntimeError):
    """Results cannot be stored: no results cache is configured."""


@dataclass
class ResultSettings:
    """``result_expires``: seconds a local result stays in the cache;
    ``cache``: the cache's name; ``poll_max``: longest sleep between polls."""

    result_expires: int = 600
    cache: str = RESULTS_CACHE
    poll_max: float = 0.05


_settings = ResultSettings()


def result_settings() -> ResultSettings:
    return _settings


def configure_results(**options: Any) -> ResultSettings:
    """Change :class:`ResultSettings`, e.g. ``configure_results(result_expires=60)``."""
    for key, value in options.items():
        if not hasattr(_settings, key):
            raise TypeError(f"unknown result setting {key!r}")
        setattr(_settings, key, value)
    return _settings


def reset_results() -> None:
    """Default result settings (tests)."""
    global _settings
    _settings = ResultSettings()
    _checked.clear()


# -- the mule side -------------------------------------------------------------------


def describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """``(module.QualName, message, traceback text)`` of an exception."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    return name, str(exc), text


def store_result(
    key: str,
    value: Any = None,
    exc: BaseException | None = None,
    *,
    expires: int | None = None,
    backend: Backend | None = None,
) -> bool:
    """Store a task's return value (or the exception it raised) under ``key``.

    Called by the mule after running a submitted call. A value that cannot
    be pickled or does not fit the cache is replaced by an error the caller
    receives; if even that cannot be stored (cache full) a line is logged
    and False returned.
    """
    backend = backend or current_backend()
    settings = _settings
    expires = settings.result_expires if expires is None else expires
    if exc is not None:
        record = _error_record(exc)
    else:
        try:
            record = pickle.dumps(("ok", value), pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - pickling a result raises anything; the caller gets it as an error
            record = _error_record(error, f"the result of the task cannot be pickled: {error}")
    record = seal_result(backend.signer(), key, record)
    if backend.cache_update(key, record, expires, settings.cache):
        return True
    small = seal_result(backend.signer(), key, _error_record(
        None,
        f"the result ({len(record)} bytes) was refused by the uWSGI cache {settings.cache!r}: "
        "larger than its blocksize, or the cache is full. Return a reference (a file, a database id), "
        "raise blocksize/items in Section.set_results_cache(), or read results sooner",
    ))
    stored = bool(backend.cache_update(key, small, expires, settings.cache))
    backend.log(f"uwsgi-mules: result {key} of {len(record)} bytes not stored in cache {settings.cache!r}"
                + ("" if stored else " (and not even the error: the cache is full)"))
    return False


def _error_record(exc: BaseException | None, message: str | None = None) -> bytes:
    if exc is None:
        described = ("uwsgi_mules.runtime.results.ResultsUnavailable", message or "", "")
    else:
        name, text, tb = describe_exception(exc)
        described = (name, message or text, tb)
    return pickle.dumps(("err", described), pickle.HIGHEST_PROTOCOL)


# -- the caller side -----------------------------------------------------------------------

_NOT_YET = object()


class LocalResult:
    """The result of a call submitted to a local mule."""

    __slots__ = ("_backend", "_cache", "_outcome", "id")

    def __init__(self, key: str, backend: Backend, cache: str) -> None:
        self.id = key
        self._backend = backend
        self._cache = cache
        self._outcome: Any = _NOT_YET

    def __repr__(self) -> str:
        return f"<LocalResult {self.id} {'ready' if self.ready() else 'pending'}>"

    def ready(self) -> bool:
        """Whether the task finished (its outcome is stored)."""
        return self._outcome is not _NOT_YET or bool(self._backend.cache_exists(self.id, self._cache))

    def result(self, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds (None: forever) for the return value.

        :raises RemoteTaskError: the task raised (type, message, traceback).
        :raises ResultTimeout: no result in time.
        """
        if self._outcome is _NOT_YET:
            self._outcome = self._wait(timeout)
            self._backend.cache_del(self.id, self._cache)  # read once: free the slot
        status, value = self._outcome
        if status == "ok":
            return value
        raise RemoteTaskError(*value)

    def _wait(self, timeout: float | None) -> tuple[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        get = self._backend.cache_get
        while True:
            raw = get(self.id, self._cache)
            if raw is not None:
                try:
                    record = open_result(self._backend.signer(), self.id, raw)
                except UnsignedResult as exc:
                    raise UntrustedResult(f"{exc}; it was not unpickled") from exc
                return pickle.loads(record)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"no result for {self.id} within {timeout}s (the task may still be running)")
            wait = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            time.sleep(wait)
            delay = min(delay * 2, _settings.poll_max)


#: backends whose results cache was found (checked once each)
_checked: weakref.WeakKeyDictionary[Backend, bool] = weakref.WeakKeyDictionary()


def check_results_cache(backend: Backend, cache: str) -> None:
    """Raise :class:`ResultsUnavailable` when ``backend`` has no cache ``cache``."""
    if _checked.get(backend):
        return
    try:
        backend.cache_keys(cache)
    except (ValueError, NotImplementedError) as exc:
        raise ResultsUnavailable(
            f"submit() on local mules needs the uWSGI cache {cache!r}: add "
            f"'cache2 = name={cache},items=1024,blocksize=65536' to the uWSGI config "
            "(Section.set_results_cache()), or FakeUwsgi(caches=[...]) in tests"
        ) from exc
    _checked[backend] = True


def submit_local(target: Target, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 prepare: Callable[[Backend], None] | None = None) -> LocalResult:
    """Send a call to a local mule and return a handle on its result;
    ``prepare(backend)`` runs first (the offload decorator installs the
    mule's message hook there, as a plain call does)."""
    backend = current_backend()
    if prepare is not None:
        prepare(backend)
    settings = _settings
    check_results_cache(backend, settings.cache)
    key = f"uwsgi-mules:{uuid.uuid4().hex}"
    meta = {"result": key, "expires": int(settings.result_expires)}
    send_bytes(backend, backend.signer().seal(envelope.pack(path, args, kwargs, target.wire, meta)), target)
    return LocalResult(key, backend, settings.cache)


def make_submit(path: str, target: Target,
                prepare: Callable[[Backend], None] | None = None) -> Callable[..., ResultHandle]:
    """The ``submit`` attribute of an offload wrapper (``prepare``: see :func:`submit_local`)."""

    def submit(*args: Any, **kwargs: Any) -> ResultHandle:
        """Offload the call and return a handle on its result
        (``.id``, ``.ready()``, ``.result(timeout=...)``)."""
        remote = route_table().lookup(target)
        if remote is not None:
            return remote.submit(path, args, kwargs)
        return submit_local(target, path, args, kwargs, prepare)

    return submit
