"""Sending one run of a periodic entry: an ordinary offload of its task.

The call carries ``meta["periodic"] = [entry name, due time]`` besides the
task's own metadata (its retries), so a run is recognisable in backlog
files and logs, and the mule runs each due time once (:mod:`.claims`: a
copy sent again by a successor scheduler is skipped). With jitter the call is held by the receiving
mule until ``due + random(0, jitter)`` (the ``offload_at`` mechanism). A
target routed to Celery (:mod:`uwsgi_mules.contrib.celery`) gets a plain
Celery send (jitter does not apply there).
"""

from __future__ import annotations

import random
from typing import Any

from .. import envelope
from ..backends.base import Backend
from ..core.hook import ensure_hook
from ..runtime.later import send_call_at
from ..runtime.routing import route_table
from ..runtime.sender import send_bytes
from .entries import Entry

META_KEY = "periodic"

__all__ = ["META_KEY", "deduplicated", "send_run"]


def deduplicated(entry: Entry) -> bool:
    """Whether a second copy of a run of ``entry`` is skipped by the mule
    (:mod:`.claims`): an offload to a mule, farm or shared queue carries
    ``meta["periodic"]``; a Django task's enqueue and a Celery send do not."""
    return entry.send is None and entry.offloading is not None and \
        route_table().lookup(entry.offloading.target) is None


def send_run(backend: Backend, entry: Entry, due: float) -> None:
    """Queue the run of ``entry`` for ``due``; raises whatever the send raises
    (``QueueFull``, ``MessageTooLarge``, ...): then nothing was sent."""
    kwargs: dict[str, Any] = {"due": entry.schedule.aware(due)} if entry.pass_due else {}
    if entry.send is not None:
        entry.send(kwargs)
        return
    offloading = entry.offloading
    assert offloading is not None
    remote = route_table().lookup(offloading.target)
    if remote is not None:
        remote.send(offloading.path, (), kwargs)
        return
    meta = dict(offloading.meta or {}, **{META_KEY: [entry.name, due]})
    jitter = entry.schedule.jitter
    if jitter:
        send_call_at(offloading.target, offloading.path, (), kwargs, due + random.uniform(0.0, jitter), meta)
        return
    ensure_hook(backend)  # the fake's mules and signal-only mules run offloads through it
    payload = backend.signer().seal(envelope.pack(offloading.path, (), kwargs, offloading.target.wire, meta))
    send_bytes(backend, payload, offloading.target)
