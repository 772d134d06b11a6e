"""The ``mule_msg_hook`` of signal-only mules: uWSGI's own loop reads the
message, our hook hands it to that mule's :class:`~uwsgi_mules.mule.loop.MuleLoop`
(made on first use) and then lets the loop tend its due calls and duties.

:func:`make_hook` is the factory the package's ``__init__`` hands to
:func:`uwsgi_mules.core.hook.provide_hook`; the sending side installs the
hook with :func:`uwsgi_mules.core.hook.ensure_hook` (once per process,
chaining any hook the application had set, and one it sets later, with a
warning).
"""

from __future__ import annotations

import threading
import weakref

from ..backends.base import Backend, MessageHook
from ..backends.selection import current_backend
from ..core.hook import HOOK_MARKER
from .dispatch import Outcome
from .loop import MuleLoop

__all__ = ["forget_hooked_loop", "hooked_loop", "make_hook", "reset_hooked_loops"]

_loops: weakref.WeakKeyDictionary[Backend, dict[int, MuleLoop]] = weakref.WeakKeyDictionary()
_loops_lock = threading.Lock()


def hooked_loop(backend: Backend, mule_id: int | None = None, *, create: bool = True) -> MuleLoop | None:
    """The loop of a mule whose messages reach us through the hook (made, and
    its predecessor's unfinished task recovered, on first use); None when
    ``create`` is False and there is none yet."""
    mule_id = mule_id or backend.mule_id()
    found = _loops.get(backend, {}).get(mule_id)
    if found is not None or not create:
        return found
    with _loops_lock:
        by_mule = _loops.setdefault(backend, {})
        found = by_mule.get(mule_id)
        if found is None:
            found = MuleLoop(backend, mule_id, label="signal-only mule")
            found.recover()
            by_mule[mule_id] = found
    return found


def forget_hooked_loop(backend: Backend, mule_id: int) -> None:
    """Drop the loop of a mule that died (the fake): the next message makes a new one."""
    with _loops_lock:
        _loops.get(backend, {}).pop(mule_id, None)


def reset_hooked_loops() -> None:
    """Forget every hooked loop (tests)."""
    with _loops_lock:
        _loops.clear()


def make_hook(previous: MessageHook | None) -> MessageHook:
    """A ``mule_msg_hook`` running our envelopes and passing any other
    message to the hook the application had set."""

    def uwsgi_mules_hook(message: bytes) -> object:
        loop = hooked_loop(current_backend())
        assert loop is not None
        outcome = loop.handle(message)
        loop.tend()  # a signal-only mule runs due calls, its replay and duties when a message wakes it
        if outcome is Outcome.NOT_ENVELOPE:
            return loop.hook_result
        return outcome is not Outcome.WAITING

    setattr(uwsgi_mules_hook, HOOK_MARKER, True)
    uwsgi_mules_hook.previous = previous  # type: ignore[attr-defined]
    return uwsgi_mules_hook

