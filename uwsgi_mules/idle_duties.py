"""Duties that run in a mule between batches of messages and on its idle wake-ups.

A duty is called with the backend and the current wall time (the fake's
virtual time on the fake) and returns the next wall time it wants to run at,
or None. The programmed mule's loop calls :func:`run_idle_duties` between
batches and at least once a second while idle; the fake calls it from
``advance()`` at the times the duties asked for. Registered by the
features that need one (the periodic scheduler, when
:mod:`uwsgi_mules.periodic` is imported). This module imports nothing of
the package, so the loop and the features do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (backend, wall time) -> the next wall time the duty wants, or None
IdleDuty = Callable[[Any, float], "float | None"]

_duties: list[IdleDuty] = []

__all__ = ["IdleDuty", "register_idle_duty", "run_idle_duties"]


def register_idle_duty(duty: IdleDuty) -> None:
    """Add ``duty`` (once)."""
    if duty not in _duties:
        _duties.append(duty)


def run_idle_duties(backend: Any, now: float) -> float | None:
    """Run every duty; the earliest next time they want. A duty that raises
    is logged and asked again a second later."""
    wake: float | None = None
    for duty in list(_duties):
        try:
            wanted = duty(backend, now)
        except Exception as exc:  # noqa: BLE001 - one failing duty must not stop the others or the mule
            backend.log(f"uwsgi-mules: ERROR {getattr(duty, '__qualname__', duty)} failed: {exc!r}")
            wanted = now + 1.0
        if wanted is not None and (wake is None or wanted < wake):
            wake = wanted
    return wake
