"""Run an offloaded call later: ``func.offload_in(seconds, ...)``,
``func.offload_at(when, ...)`` and :func:`send_call_at`.

The due time travels in the envelope's metadata (``meta["due"]``, epoch
seconds). The call is queued at once like any offload; the mule that
receives it holds it in its waiting room (durable across reloads, stops
with ``UWSGIMULES_BACKLOG_DIR`` and crashes; see
:mod:`uwsgi_mules.mule.delivery.waiting`) and runs it once it is due, never
before. A mule looks at its waiting calls between batches of messages and
at least once a second while idle, so a call runs within about a second
after its time when the mule is free.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .. import envelope
from ..backends.selection import current_backend
from ..core.hook import ensure_hook
from ..core.retry_policy import due_of, validate_delay
from ..errors import NotOffloadable
from .routing import route_table
from .sender import send_bytes
from .targets import Target


def send_call_at(target: Target, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 due: datetime | float, meta: dict[str, Any] | None = None) -> bool:
    """Queue an already-built call to run at ``due``; True once queued.

    The lower level of ``offload_in`` / ``offload_at`` (and of the
    django.tasks backend's ``run_after``). ``target``: a
    :class:`~uwsgi_mules.runtime.targets.Target` (``func.offloading.target``
    of an offloaded function); ``path``: the registered task
    (``func.offloading.path``); ``due``: a timezone-aware ``datetime`` or epoch
    seconds (a time in the past runs at once); ``meta``: more metadata to
    carry, e.g. ``{"retries": 3}`` or ``{"result": key}`` (``due`` is set
    here). Raises ``ValueError`` for a naive datetime or a non-finite time,
    :class:`~uwsgi_mules.errors.NotOffloadable` for unpicklable arguments
    or a route that cannot run a call later (a Celery route can: the call
    is published with its ``eta``), and
    whatever a send raises (``QueueFull``, ``MessageTooLarge``, ...).
    """
    due_time = due_of(due) if isinstance(due, datetime) else _epoch_seconds(due)
    remote = route_table().lookup(target)
    if remote is not None:  # a route runs it later itself (Celery: eta), or refuses
        send_at = getattr(remote, "send_at", None)
        if send_at is None:
            raise NotOffloadable(f"{path}: run-later is not supported on {remote.describe()}")
        return bool(send_at(path, args, kwargs, due_time))
    backend = current_backend()
    ensure_hook(backend)
    merged = dict(meta or {}, due=due_time)
    return send_bytes(backend, backend.signer().seal(envelope.pack(path, args, kwargs, target.wire, merged)), target)


def _now(target: Target) -> float:
    """Epoch seconds: the wall clock for a routed target (it may be sent
    from a process without uWSGI), else the backend's (the fake's clock)."""
    return time.time() if route_table().lookup(target) is not None else current_backend().wall_time()


def _epoch_seconds(due: Any) -> float:
    """``due`` (epoch seconds) as a float: any finite time, a past one
    included (it runs at once); ``ValueError`` otherwise."""
    if isinstance(due, bool) or not isinstance(due, (int, float)):
        raise ValueError(f"due must be a timezone-aware datetime or epoch seconds, got {due!r}")  # noqa: TRY004 - the documented error for any bad value
    try:
        value = float(due)
    except OverflowError:
        raise ValueError(
            f"due must be a finite number of epoch seconds, got an int of {int(due).bit_length()} bits"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"due must be a finite number of epoch seconds, got {due!r}")
    return value


def make_offload_in(path: str, target: Target, meta: dict[str, Any] | None) -> Callable[..., bool]:
    """The ``offload_in`` attribute of an offload wrapper."""

    def offload_in(seconds: float, /, *args: Any, **kwargs: Any) -> bool:
        """Offload the call to run ``seconds`` from now (never before); True once queued."""
        delay = validate_delay(seconds, "seconds")
        return send_call_at(target, path, args, kwargs, _now(target) + delay, meta)

    return offload_in


def make_offload_at(path: str, target: Target, meta: dict[str, Any] | None) -> Callable[..., bool]:
    """The ``offload_at`` attribute of an offload wrapper."""

    def offload_at(when: datetime, /, *args: Any, **kwargs: Any) -> bool:
        """Offload the call to run at ``when``, a timezone-aware ``datetime``
        (never before; a past time runs at once); True once queued."""
        return send_call_at(target, path, args, kwargs, due_of(when), meta)

    return offload_at
