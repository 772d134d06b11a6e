"""A mule whose runtime directory or key is unusable waits instead of crash-looping.

A runtime directory another user owns or can change, or a bad key file,
raises :class:`~uwsgi_mules.instance.InsecureDirectory` (an ``OSError``)
when the mule loads the instance key. Raising out of the mule would make
uWSGI respawn it at once, over and over; :func:`start_when_possible` logs the
reason once and tries again every few seconds, so a fixed directory is
picked up without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ..backends.base import Backend

#: seconds between two start attempts of a mule whose runtime directory or key is unusable
START_RETRY_SECONDS = 5.0

_Made = TypeVar("_Made")


def start_when_possible(make: Callable[[], _Made], backend: Backend, *,
                        retry_seconds: float = START_RETRY_SECONDS) -> _Made:
    """``make()``, retried every ``retry_seconds`` while it raises ``OSError``
    (:class:`~uwsgi_mules.instance.InsecureDirectory` is one: a runtime
    directory another user owns or can change, a bad key file). Each new
    reason is logged once as an ERROR line; the mule runs nothing meanwhile
    (what is queued stays queued) and uWSGI's stop signals end it as usual,
    instead of a crash and a respawn in a loop."""
    reason = ""
    while True:
        try:
            made = make()
        except OSError as exc:
            if str(exc) != reason:
                reason = str(exc)
                backend.log(f"uwsgi-mules: ERROR mule {backend.mule_id()} cannot start: {reason}; it runs no "
                            f"offload until this is fixed (retrying every {retry_seconds:g} s)")
            time.sleep(retry_seconds)
            continue
        if reason:
            backend.log(f"uwsgi-mules: mule {backend.mule_id()} starts: its runtime directory is usable now")
        return made
