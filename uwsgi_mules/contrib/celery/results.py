"""``func.submit()`` on a route: a handle over Celery's ``AsyncResult``."""

from __future__ import annotations

from typing import Any

from ...runtime.results import RemoteTaskError, ResultTimeout


def remote_type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = getattr(kind, "__module__", "builtins")
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


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

        :raises RemoteTaskError: the task raised on the worker (its type,
            message and traceback text).
        :raises ResultTimeout: no result in time.
        """
        from celery.exceptions import TimeoutError as CeleryTimeout

        try:
            value = self.async_result.get(timeout=timeout, propagate=False)
        except CeleryTimeout as exc:
            raise ResultTimeout(f"no result for {self.id} within {timeout}s (the task may still be running)") from exc
        if self.async_result.failed():
            error = self.async_result.result
            if isinstance(error, BaseException):
                raise RemoteTaskError(remote_type_name(error), str(error), self.async_result.traceback or "")
            raise RemoteTaskError("unknown", repr(error), self.async_result.traceback or "")
        return value
