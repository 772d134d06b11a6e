"""Send bytes to a target without losing them silently."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..backends.base import Backend, MuleTarget
from ..core.state import runtime_state
from ..envelope import WireTarget
from ..errors import MessageTooLarge, QueueFull, UnknownFarm, UnknownMule
from .targets import Target, receive_limit, size_error, validate


@dataclass(frozen=True)
class Route:
    """A target validated against a backend's layout, ready for sending."""

    target: Target
    raw: MuleTarget
    limit: int

    @property
    def wire(self) -> WireTarget:
        """The target as envelopes and ``uwsgi.mule_msg`` take it (:attr:`Target.wire`)."""
        return self.target.wire


def prepare_route(backend: Backend, target: Target) -> Route:
    """Validate ``target`` (UnknownMule / UnknownFarm) and compute its size limit."""
    topology = backend.topology()
    provable = backend.provable_mule_count() if topology is None and target.kind == "mule" else None
    validate(target, topology, provable)
    return Route(target, target.raw, receive_limit(target, topology))


def send_bytes(backend: Backend, payload: bytes, target: Target, *, timeout: float | None = None) -> bool:
    """Queue ``payload`` for ``target``; True once queued (see :func:`send_routed`)."""
    return send_routed(backend, payload, prepare_route(backend, target), timeout=timeout)


def send_routed(backend: Backend, payload: bytes, route: Route, *, timeout: float | None = None) -> bool:
    """Queue ``payload``; True once queued.

    Too large for the receiver: :class:`MessageTooLarge`, nothing sent. A
    full queue is retried (natively by the plugin or the fake, else with
    exponential backoff) until ``timeout`` (default: the ``send_timeout``
    setting), then :class:`QueueFull` is raised: the message was not
    delivered.
    """
    if len(payload) > route.limit:
        raise MessageTooLarge(size_error(len(payload), route.target, route.limit))
    if _raw_send(backend, payload, route):
        return True
    settings = runtime_state().settings
    timeout = settings.send_timeout if timeout is None else timeout
    waited = backend.send_wait(payload, route.raw, timeout)
    if waited is not None:
        if waited:
            return True
    else:
        deadline = time.monotonic() + timeout
        delay = settings.backoff_initial
        while time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            if _raw_send(backend, payload, route):
                return True
            delay = min(delay * 2, settings.backoff_max)
    raise QueueFull(
        f"{route.target.describe()} stayed full for {timeout}s; the message ({len(payload)} bytes) was "
        "not sent. Add mules, make tasks faster, or raise the timeout with "
        "uwsgi_mules.configure(send_timeout=...)"
    )


def send_once(backend: Backend, payload: bytes, route: Route) -> bool:
    """Try once, without waiting: True if queued, False if the queue is full.
    :class:`MessageTooLarge`, :class:`UnknownMule` or :class:`UnknownFarm`
    when it can never be sent there."""
    if len(payload) > route.limit:
        raise MessageTooLarge(size_error(len(payload), route.target, route.limit))
    waited = backend.send_wait(payload, route.raw, 0.0)  # the plugin: no "queue full" log line
    if waited is not None:
        return waited
    return _raw_send(backend, payload, route)


def _raw_send(backend: Backend, payload: bytes, route: Route) -> bool:
    try:
        wire = route.wire
        sent = backend.raw_sender(wire)(payload, wire)
    except ValueError as exc:
        text = str(exc)
        if "farm" in text:
            raise UnknownFarm(f"uWSGI does not know {route.target.describe()}: {text}") from exc
        raise UnknownMule(f"uWSGI refused {route.target.describe()}: {text}") from exc
    if not sent and route.target.kind == "mule" and backend.send_refused_bad_target():
        # not a full queue: waiting could never help
        raise UnknownMule(
            f"uWSGI has no {route.target.describe()} (its queue is a bad file descriptor): the mule "
            "layout uwsgi-mules read does not match this server; the message was not sent"
        )
    return bool(sent)
