"""``@thread``, ``@lock`` and ``@harakiri``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from ..backends.selection import current_backend
from ..locks import Lock


class thread:  # noqa: N801
    """Run each call in a new daemon thread; the call returns the function."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any) -> Callable[..., Any]:
        worker = threading.Thread(target=self.f, args=args, daemon=True)
        worker.start()
        return self.f


class lock:  # noqa: N801
    """Run the function holding uWSGI lock 0 (skipped in the spooler, as the
    original does)."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_backend().i_am_the_spooler():
            return None
        with Lock(0):
            return self.f(*args, **kwargs)


class harakiri:  # noqa: N801
    """``@harakiri(10)``: uWSGI kills the process if a call takes over 10 s."""

    def __init__(self, seconds: int) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise ValueError(f"harakiri seconds must be an int >= 0, got {seconds!r}")
        self.s = seconds

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        self.f = f

        @functools.wraps(f)
        def real_call(*args: Any, **kwargs: Any) -> Any:
            backend = current_backend()
            backend.set_user_harakiri(self.s)
            try:
                return f(*args, **kwargs)
            finally:
                backend.set_user_harakiri(0)

        return real_call
