"""``func.submit()`` on a route: a handle over Celery's ``AsyncResult``."""

from __future__ import annotations

from typing import Any

from ...runtime.results import RemoteTaskError, ResultTimeout


def remote_type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = getattr(kind, "__module__", "builtins")
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


class CeleryTaskError(RemoteTaskError):
    """A routed task raised on a Celery worker: :class:`RemoteTaskError`
    plus ``worker``, the worker's node name (``name@host``; ``""`` when the
    result backend does not say: Celery stores it with ``result_extended``,
    which ``route()`` turns on unless the app sets it)."""

    def __init__(self, remote_type: str, remote_message: str, remote_traceback: str = "",
                 worker: str = "") -> None:
        super().__init__(remote_type, remote_message, remote_traceback)
        self.worker = worker
        if worker:
            self.args = (f"{self.args[0]}\n(on Celery worker {worker})",)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.remote_type, self.remote_message, self.remote_traceback, self.worker))


def worker_of(async_result: Any) -> str:
    """The node name of the worker that ran the task (``""`` when not stored)."""
    try:
        return str(async_result.worker or "")
    except (AttributeError, KeyError, TypeError):
        return ""


class CeleryResult:
    """The result of a routed call: ``.id``, ``.ready()``, ``.result(timeout)``.

    ``async_result`` is Celery's own :class:`~celery.result.AsyncResult`.
    """

    __slots__ = ("async_result", "id")

    def __init__(self, async_result: Any) -> None:
        self.async_result = async_result
        self.id: str = async_result.id

    def __repr__(self) -> str:
        return f"<CeleryResult {self.id} {self.async_result.state}>"

    def ready(self) -> bool:
        return bool(self.async_result.ready())

    def result(self, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds (None: forever) for the return value.

        :raises CeleryTaskError: the task raised on the worker (a
            :class:`RemoteTaskError`: its type, message and traceback text,
            and the worker).
        :raises ResultTimeout: no result in time.
        """
        from celery.exceptions import TimeoutError as CeleryTimeout

        try:
            value = self.async_result.get(timeout=timeout, propagate=False)
        except CeleryTimeout as exc:
            raise ResultTimeout(f"no result for {self.id} within {timeout}s (the task may still be running)") from exc
        if self.async_result.failed():
            error = self.async_result.result
            trace, worker = self.async_result.traceback or "", worker_of(self.async_result)
            if isinstance(error, BaseException):
                raise CeleryTaskError(remote_type_name(error), str(error), trace, worker)
            raise CeleryTaskError("unknown", repr(error), trace, worker)
        return value
