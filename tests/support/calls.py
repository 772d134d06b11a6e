"""Run functions named by import path: in a test WSGI app (``POST /call``)
and concurrently from the test process. Shared by the test harnesses."""

from __future__ import annotations

import importlib
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any


def resolve(path: str) -> Any:
    """The object at ``module:qualname`` itself (an offload wrapper stays a wrapper)."""
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def call_application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``POST /call`` with a pickled ``(path, args, kwargs)``: run it here and
    answer a pickled ``("ok", result)`` or ``("err", exc)``. Test-only: it runs
    what it is sent, so test servers listen on 127.0.0.1 only."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    path, args, kwargs = pickle.loads(environ["wsgi.input"].read(length))
    try:
        outcome: tuple[str, Any] = ("ok", resolve(path)(*args, **kwargs))
    except Exception as exc:
        outcome = ("err", exc)
    body = pickle.dumps(outcome)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]


def run_concurrently(
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
    runner: Callable[[int, Callable[..., Any], tuple[Any, ...]], Any],
    timeout: float = 180.0,
) -> list[Any]:
    """``runner(worker_number, func, args)`` for every call, each in its own
    thread (worker numbers from 1); re-raise the first error."""
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            results[index] = runner(index + 1, func, args)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, f, a)) for i, (f, a) in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    return results
