"""Sending an offload again where it was first sent (after a crash, a reload or a stop).

An envelope records its target in wire form (a mule id, 0 for the shared
queue, a farm name as bytes); these helpers resolve it and send through the
sending side (:mod:`uwsgi_mules.runtime.sender`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..backends.base import Backend
from ..envelope import WireTarget
from ..runtime.sender import prepare_route, send_bytes, send_once
from ..runtime.targets import Target


def send_now(backend: Backend) -> Callable[[WireTarget, bytes], None]:
    """Send a sealed envelope to its wire target, waiting for room like any
    offload; a failure is logged, never silent."""

    def send(target: WireTarget, message: bytes) -> None:
        resolved = Target.from_wire(target)
        try:
            send_bytes(backend, message, resolved)
        except Exception as exc:  # noqa: BLE001 - say it, never lose it silently
            backend.log(f"uwsgi-mules: ERROR could not re-queue a task for {resolved.describe()}: {exc}")

    return send


def send_nowait(backend: Backend) -> Callable[[bytes, WireTarget], bool]:
    """Try once to queue a sealed envelope at its wire target: True if queued,
    False if the queue is full; UnknownMule / UnknownFarm / MessageTooLarge if
    it can never be sent there (the replay queue keeps it then)."""

    def send(message: bytes, target: WireTarget) -> bool:
        return send_once(backend, message, prepare_route(backend, Target.from_wire(target)))

    return send
