"""Offloading from Django code: a default target and sending on commit.

``@offload()`` is :func:`uwsgi_mules.mule_offload` with the target taken from
``UWSGI_MULES["DEFAULT_TARGET"]`` when none is given, and an ``on_commit``
option. :func:`offload_on_commit` defers one call of any offloaded function
until the current transaction commits, so the mule never looks for a row that
is not committed yet.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ...backends.selection import current_backend
from ...core.hook import ensure_hook
from ...core.registry import ORIGINAL_ATTR
from ...errors import NotOffloadable
from ...runtime.offload import OFFLOADING_ATTR, TypeMuleFarm, mule_offload, offloading_of
from ...runtime.sender import send_bytes

F = TypeVar("F", bound=Callable[..., Any])


class _UseSetting:
    def __repr__(self) -> str:
        return "DEFAULT_TARGET"


#: the default of ``offload(mule_or_farm=...)``: ``UWSGI_MULES["DEFAULT_TARGET"]``
DEFAULT_TARGET: Any = _UseSetting()


def offload(
    mule_or_farm: TypeMuleFarm | _UseSetting = DEFAULT_TARGET,
    *,
    on_commit: bool = False,
    using: str | None = None,
    retries: int = 0,
    **retry_options: Any,
) -> Callable[[F], F]:
    """Decorator: calling the function runs it on a mule or farm.

    Without a target it uses ``UWSGI_MULES["DEFAULT_TARGET"]`` (default 0,
    the shared queue: the first free mule). With ``on_commit=True`` each call
    is encoded at once (bad arguments raise
    :class:`~uwsgi_mules.errors.NotOffloadable` in the caller) and sent when
    the transaction on database ``using`` commits; it is never sent if the
    transaction rolls back, and sent at once outside a transaction. Such a
    call returns None; a plain call returns True once queued.

    ``retries``, ``retry_on``, ``retry_backoff``, ``retry_backoff_max``,
    ``retry_jitter``: see :func:`uwsgi_mules.mule_offload`; ``offload_in``
    and ``offload_at`` send at once (not on commit).
    """
    if isinstance(mule_or_farm, _UseSetting):
        from .conf import get_settings

        mule_or_farm = get_settings().default_target

    decorate_plain = mule_offload(mule_or_farm, retries=retries, **retry_options)

    def decorate(func: F) -> F:
        offloaded = decorate_plain(func)
        if not on_commit:
            return offloaded

        @functools.wraps(func)
        def offloaded_on_commit(*args: Any, **kwargs: Any) -> None:
            _send_on_commit(offloaded, args, kwargs, using)

        for attr in (ORIGINAL_ATTR, "run_local", OFFLOADING_ATTR, "submit", "offload_in",
                     "offload_at"):
            setattr(offloaded_on_commit, attr, getattr(offloaded, attr))
        offloaded_on_commit.send_now = offloaded  # type: ignore[attr-defined]
        return offloaded_on_commit  # type: ignore[return-value]

    return decorate


def offload_on_commit(task: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """Offload ``task(*args, **kwargs)`` when the current transaction of the
    default database commits (at once outside a transaction).

    ``task`` is a function decorated with ``mule_offload``, ``Mule.offload``,
    ``Farm.offload`` or :func:`offload`. The call is encoded now: arguments a
    mule could not receive raise :class:`~uwsgi_mules.errors.NotOffloadable`
    here, and later changes to them are not seen. A send that fails after
    the commit (:class:`~uwsgi_mules.errors.QueueFull`) raises where the
    transaction commits; the committed data stays.
    """
    _send_on_commit(task, args, kwargs, None)


def _send_on_commit(task: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], using: str | None) -> None:
    from django.db import transaction

    offloading = offloading_of(task)
    if offloading is None:
        raise NotOffloadable(
            f"{task!r} is not an offloaded function: decorate it with mule_offload, "
            "Mule(...).offload(), Farm(...).offload() or uwsgi_mules.contrib.django.offload()"
        )
    body = offloading.encode(args, kwargs)

    def send() -> None:
        backend = current_backend()
        ensure_hook(backend)
        send_bytes(backend, backend.signer().seal(body), offloading.target)

    transaction.on_commit(send, using=using)
