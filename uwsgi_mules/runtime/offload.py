"""The ``mule_offload`` decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Union

from .. import envelope
from ..backends.selection import current_backend, selection_state
from ..core.hook import ensure_hook
from ..core.registry import ORIGINAL_ATTR, function_path
from ..core.retry_policy import DEFAULT_BACKOFF, DEFAULT_BACKOFF_MAX, RetryPolicy
from ..core.state import runtime_state
from ..errors import BackendUnavailable, UnknownFarm
from .later import make_offload_at, make_offload_in
from .results import make_submit
from .routing import RemoteRoute, ResultHandle, RouteCache, RouteTable, route_table, send_unbacked
from .sender import Route, prepare_route, send_routed
from .targets import Addressee, Target, farm_target, mule_target

if TYPE_CHECKING:
    from .mules import Farm, Mule

F = TypeVar("F", bound=Callable[..., Any])
TypeMuleFarm = Union[str, int, "Mule", "Farm", None]


def resolve_target(mule_or_farm: TypeMuleFarm) -> Target:
    """uwsgiconf's rules: None -> mule 1; int -> that mule (0: the shared queue,
    any mule); str -> a farm; Mule / Farm objects."""
    if mule_or_farm is None:
        return mule_target(1)
    if isinstance(mule_or_farm, Addressee):
        return mule_or_farm.offload_target()
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

    def decorate(func: F) -> F:
        path = function_path(func)
        register_task(path, func, policy)
        _install_hook_in_mule()
        offloaded = _offloading_wrapper(func, Offloading(path, target, retries))
        setattr(offloaded, ORIGINAL_ATTR, func)
        offloaded.run_local = func  # type: ignore[attr-defined]
        offloaded.retry_policy = policy  # type: ignore[attr-defined]
        offloaded.offload_in = make_offload_in(path, target, offloaded.offloading.meta)  # type: ignore[attr-defined]
        offloaded.offload_at = make_offload_at(path, target, offloaded.offloading.meta)  # type: ignore[attr-defined]
        return offloaded  # type: ignore[return-value]

    return decorate


def register_task(path: str, func: Callable[..., Any], policy: RetryPolicy) -> None:
    """Make ``func`` runnable in this process's mules under ``path`` (offloads
    and Django tasks alike), with ``policy`` for its exceptions: the policy
    of an earlier registration under ``path`` is replaced, or removed when
    ``policy`` retries no exception."""
    state = runtime_state()
    if state.registry.tasks.get(path) is not func:
        state.registry.register(path, func)
    if policy.retry_on:
        state.retry_policies[path] = policy
    else:
        state.retry_policies.pop(path, None)


#: the attribute of an offloaded function that holds its :class:`Offloading`
OFFLOADING_ATTR = "offloading"


class Offloading:
    """What ``mule_offload`` made of a function, attached to the wrapper as
    ``func.offloading`` (``func.submit`` is its :attr:`submit`): the task's
    path, where it goes, its retries."""

    __slots__ = ("meta", "path", "retries", "submit", "target")

    def __init__(self, path: str, target: Target, retries: int) -> None:
        self.path = path
        self.target = target
        self.retries = retries
        #: the envelope metadata of every call (None: none)
        self.meta: dict[str, Any] | None = {"retries": retries} if retries else None
        #: offload a call for its result: a handle (``.id``, ``.ready()``, ``.result(timeout=...)``);
        #: like a plain call it installs the hook a signal-only mule runs offloads with
        self.submit: Callable[..., ResultHandle] = make_submit(path, target, ensure_hook)

    def encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """The unsigned body of a call (:class:`~uwsgi_mules.errors.NotOffloadable` if it cannot be pickled)."""
        return envelope.pack(self.path, args, kwargs, self.target.wire, self.meta)

    def __repr__(self) -> str:
        return f"Offloading({self.path!r}, {self.target.describe()}, retries={self.retries})"


def offloading_of(func: object) -> Offloading | None:
    """The :class:`Offloading` of an offloaded function, or None for any other callable."""
    found = getattr(func, OFFLOADING_ATTR, None)
    return found if isinstance(found, Offloading) else None


class PreparedRoute:
    """What an offload wrapper prepared for one backend: the route validated
    once, then reused by every call until the backend or the routes change."""

    __slots__ = ("backend", "limit", "offload", "remote", "route", "send", "wire")

    def __init__(self, backend: Any, offloading: Offloading, routes: RouteTable) -> None:
        self.backend = backend
        #: set when the target is routed elsewhere (uwsgi_mules.contrib.celery): nothing else is used
        self.remote: RemoteRoute | None = routes.lookup(offloading.target)
        self.route: Route | None = None
        self.send: Callable[[bytes, Any], Any] | None = None
        self.wire: Any = 0
        self.limit = 0
        #: ``offload(args, kwargs)``: pickle, sign and send in one call (C when built; ``Signer.sender``)
        self.offload: Callable[[Any, Any], Any] | None = None
        if self.remote is None:
            ensure_hook(backend)
            route = self.route = prepare_route(backend, offloading.target)
            self.wire = route.wire
            self.send = backend.raw_sender(self.wire)
            self.limit = route.limit
            self.offload = backend.signer().sender(offloading.path, self.wire, offloading.meta, self.send, self.limit)


def _offloading_wrapper(func: Callable[..., Any], offloading: Offloading) -> Callable[..., Any]:
    """The function that sends calls of ``func`` instead of running them."""
    path, target = offloading.path, offloading.target
    routes = route_table()
    cache = RouteCache()  # one slot: a new fake per test replaces it, nothing accumulates
    routes.watch(cache)
    stack, selector = selection_state()  # what current_backend() reads, read here without a call

    def finish(prepared: PreparedRoute, sent: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """After ``prepared.offload`` did not queue the call (``sent``: the envelope, or False)."""
        backend, route, send = prepared.backend, prepared.route, prepared.send
        assert route is not None and send is not None  # set with prepared.offload: a local route
        if sent is False:  # pickling failed: pickle again to say which argument (NotOffloadable)
            sent = backend.signer().seal(offloading.encode(args, kwargs))
            if len(sent) <= prepared.limit:
                try:
                    if send(sent, prepared.wire):
                        return True
                except ValueError:
                    pass  # send_routed turns it into UnknownMule / UnknownFarm
        return send_routed(backend, sent, route)  # too large, full queue: retries or raises

    def send_anew(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """A call with no route prepared for the current backend (or routed elsewhere)."""
        try:
            backend = current_backend()
        except BackendUnavailable as exc:  # no uWSGI here: only routed targets can go
            return send_unbacked(target, path, args, kwargs, exc)
        prepared = cache.entry  # read once: a route change may empty it
        if prepared is None or prepared.backend is not backend:
            prepared = cache.entry = PreparedRoute(backend, offloading, routes)
        if prepared.offload is None:
            return prepared.remote.send(path, args, kwargs)
        sent = prepared.offload(args, kwargs)
        return True if sent is True else finish(prepared, sent, args, kwargs)

    @functools.wraps(func)
    def offloaded(*args: Any, **kwargs: Any) -> bool:
        prepared = cache.entry  # read once: a route change may empty it
        if prepared is None or prepared.offload is None or prepared.backend is not (
            stack[-1] if stack else selector._real
        ):
            return send_anew(args, kwargs)
        sent = prepared.offload(args, kwargs)
        return True if sent is True else finish(prepared, sent, args, kwargs)

    offloaded.offloading = offloading  # type: ignore[attr-defined]
    offloaded.submit = offloading.submit  # type: ignore[attr-defined]
    return offloaded


def _install_hook_in_mule() -> None:
    """Signal-only mules import the application (in the master before fork,
    or themselves with lazy-apps) and then only call ``uwsgi.mule_msg_hook``:
    install it whenever a function is decorated under real uWSGI."""
    try:
        backend = current_backend()
    except BackendUnavailable:
        return
    if backend.is_real:
        ensure_hook(backend)
