"""The ``mule_offload`` decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Union

from .. import envelope
from ..backends.selection import current_backend
from ..errors import BackendUnavailable, UnknownFarm
from ..registry import ORIGINAL_ATTR, function_path
from .dispatch import ensure_hook
from .later import make_offload_at, make_offload_in
from .retry_policy import DEFAULT_BACKOFF, DEFAULT_BACKOFF_MAX, RetryPolicy
from .results import make_submit
from .routing import route_table, send_unbacked
from .sender import prepare_route, send_routed
from .state import runtime_state
from .targets import Target, farm_target, mule_target

if TYPE_CHECKING:
    from .mules import Farm, Mule

F = TypeVar("F", bound=Callable[..., Any])
TypeMuleFarm = Union[str, int, "Mule", "Farm", None]


def resolve_target(mule_or_farm: TypeMuleFarm) -> Target:
    """uwsgiconf's rules: None -> mule 1; int -> that mule (0: the shared queue,
    any mule); str -> a farm; Mule / Farm objects."""
    from .mules import Farm, Mule

    if mule_or_farm is None:
        return mule_target(1)
    if isinstance(mule_or_farm, Mule):
        return mule_target(mule_or_farm.id)
    if isinstance(mule_or_farm, Farm):
        return farm_target(mule_or_farm.name)
    if isinstance(mule_or_farm, (str, bytes)):
        return farm_target(mule_or_farm)
    if isinstance(mule_or_farm, int) and not isinstance(mule_or_farm, bool):
        return mule_target(mule_or_farm)
    raise UnknownFarm(f"offload target must be a mule id, a farm name, a Mule or a Farm, not {mule_or_farm!r}")


def mule_offload(
    mule_or_farm: TypeMuleFarm = None,
    *,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (),
    retry_backoff: float = DEFAULT_BACKOFF,
    retry_backoff_max: float = DEFAULT_BACKOFF_MAX,
    retry_jitter: bool = True,
) -> Callable[[F], F]:
    """Decorator: calling the function sends it to a mule or farm instead.

    ``None`` offloads to mule 1 (as uwsgiconf does), ``0`` to the shared
    queue (the first free mule). The call returns True once the message is
    queued, or raises (:class:`~uwsgi_mules.errors.QueueFull`,
    :class:`~uwsgi_mules.errors.MessageTooLarge`, ...); it never drops the
    call silently. The mule runs the original function; call
    ``func.run_local(...)`` to run it here.

    ``retries``: at-least-once delivery. When the mule running the task dies
    (``SIGKILL``, out of memory, harakiri), the respawned mule sends the task
    again, up to ``retries`` times; then it logs it as dead. Such tasks must
    be idempotent. With 0 (the default) the task is named in the log and not
    run again.

    ``retry_on``: a tuple of exception classes; a task raising one of them
    runs again after ``retry_backoff * 2**(k-1)`` seconds for its k-th retry
    (capped by ``retry_backoff_max``; with ``retry_jitter``, a random delay
    between 0 and that), within the same ``retries`` budget as crashes.
    After its last attempt it is recorded as dead (``uwsgi-mules dead``).
    Other exceptions are logged once and not retried. The task reads its
    attempt number with :func:`uwsgi_mules.current_attempt`.

    The wrapper also has ``offload_in(seconds, *args, **kwargs)`` and
    ``offload_at(when, *args, **kwargs)`` (``when``: a timezone-aware
    ``datetime``): the call runs at that time, never before.
    """
    target = resolve_target(mule_or_farm)
    policy = RetryPolicy.build(retries, retry_on, retry_backoff, retry_backoff_max, retry_jitter)
    meta = {"retries": retries} if retries else None

    def decorate(func: F) -> F:
        path = function_path(func)
        runtime_state().registry.register(path, func)
        if policy.retry_on:
            runtime_state().retry_policies[path] = policy
        else:
            runtime_state().retry_policies.pop(path, None)
        _install_hook_in_mule()

        # the target validated for the last backend used (one slot: a new fake
        # per test replaces it, nothing accumulates); the route table marks it
        # stale when routes change:
        # (backend, route, raw send, raw target, size limit, sealer, remote route)
        last: list[tuple[Any, ...]] = []
        routes = route_table()
        routes.watch(last)

        @functools.wraps(func)
        def offloaded(*args: Any, **kwargs: Any) -> bool:
            try:
                backend = current_backend()
            except BackendUnavailable as exc:  # no uWSGI here: only routed targets can go
                return send_unbacked(target, path, args, kwargs, exc)
            entry = last[0] if last else None  # read once: a route change may replace it
            if entry is None or entry[0] is not backend:
                remote = routes.lookup(target)
                if remote is not None:  # routed elsewhere (uwsgi_mules.contrib.celery)
                    entry = (backend, None, None, None, 0, None, remote)
                else:
                    ensure_hook(backend)
                    route = prepare_route(backend, target)
                    wire = 0 if route.raw is None else route.raw
                    send = backend.raw_sender(wire)
                    entry = (backend, route, send, wire, route.limit, backend.signer().seal_call, None)
                last[:] = [entry]
            _, route, send, raw, limit, seal_call, remote = entry
            if remote is not None:
                return remote.send(path, args, kwargs)
            try:  # pickle the call and sign it with the instance key (C when built)
                payload = seal_call(path, args, kwargs, raw, meta)
            except Exception:
                payload = backend.signer().seal(envelope.pack(path, args, kwargs, raw, meta))  # NotOffloadable
            if len(payload) <= limit:
                try:
                    if send(payload, raw):
                        return True
                except ValueError:
                    pass  # send_routed turns it into UnknownMule / UnknownFarm
            return send_routed(backend, payload, route)  # too large, full queue: retries or raises

        setattr(offloaded, ORIGINAL_ATTR, func)
        offloaded.run_local = func  # type: ignore[attr-defined]
        offloaded.task_path = path  # type: ignore[attr-defined]
        offloaded.offload_target = target  # type: ignore[attr-defined]
        offloaded.retries = retries  # type: ignore[attr-defined]
        offloaded.submit = make_submit(path, target)  # type: ignore[attr-defined]
        offloaded.retry_policy = policy  # type: ignore[attr-defined]
        offloaded.offload_in = make_offload_in(path, target, meta)  # type: ignore[attr-defined]
        offloaded.offload_at = make_offload_at(path, target, meta)  # type: ignore[attr-defined]
        return offloaded  # type: ignore[return-value]

    return decorate


def _install_hook_in_mule() -> None:
    """Signal-only mules import the application (in the master before fork,
    or themselves with lazy-apps) and then only call ``uwsgi.mule_msg_hook``:
    install it whenever a function is decorated under real uWSGI."""
    try:
        backend = current_backend()
    except BackendUnavailable:
        return
    if getattr(backend, "is_real", False):
        ensure_hook(backend)
