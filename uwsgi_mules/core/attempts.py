"""Which attempt of an offloaded task is running: :func:`current_attempt`.

The mule sets it around a task that travels with metadata (retries, a due
time); a task without any runs its first and only attempt.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("uwsgi_mules_attempt", default=1)


def current_attempt() -> int:
    """The attempt number of the offloaded task running in this thread: 1
    for its first run, 2 for its first retry (after an exception in
    ``retry_on`` or a crash of its mule), and so on; 1 outside a task."""
    return _attempt.get()


@contextmanager
def running_attempt(attempt: int) -> Iterator[None]:
    """Make :func:`current_attempt` return ``attempt`` inside the block."""
    token = _attempt.set(attempt)
    try:
        yield
    finally:
        _attempt.reset(token)
