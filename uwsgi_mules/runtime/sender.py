"""Send bytes to a target without losing them silently."""

from __future__ import annotations

import time

from ..backends.base import Backend
from ..errors import QueueFull, UnknownFarm, UnknownMule
from .state import runtime_state
from .targets import Target, check_size, validate


def send_bytes(backend: Backend, payload: bytes, target: Target, *, timeout: float | None = None) -> bool:
    """Queue ``payload`` for ``target``; True once queued.

    Validates the target and size first. A full queue is retried (natively
    by the plugin or the fake, else with exponential backoff) until
    ``timeout`` (default: the ``send_timeout`` setting), then
    :class:`QueueFull` is raised: the message was not delivered.
    """
    settings = runtime_state().settings
    timeout = settings.send_timeout if timeout is None else timeout
    topology = backend.topology()
    validate(target, topology)
    check_size(len(payload), target, topology)
    raw_target = target.raw

    if _raw_send(backend, payload, raw_target, target):
        return True
    waited = backend.send_wait(payload, raw_target, timeout)
    if waited is not None:
        if waited:
            return True
    else:
        deadline = time.monotonic() + timeout
        delay = settings.backoff_initial
        while time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            if _raw_send(backend, payload, raw_target, target):
                return True
            delay = min(delay * 2, settings.backoff_max)
    raise QueueFull(
        f"{target.describe()} stayed full for {timeout}s; the message ({len(payload)} bytes) was "
        "not sent. Add mules, make tasks faster, or raise the timeout with "
        "uwsgi_mules.configure(send_timeout=...)"
    )


def _raw_send(backend: Backend, payload: bytes, raw_target: object, target: Target) -> bool:
    try:
        return backend.mule_msg(payload, raw_target)  # type: ignore[arg-type]
    except ValueError as exc:
        text = str(exc)
        if "farm" in text:
            raise UnknownFarm(f"uWSGI does not know {target.describe()}: {text}") from exc
        raise UnknownMule(f"uWSGI refused {target.describe()}: {text}") from exc
