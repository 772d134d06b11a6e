"""Installing the ``mule_msg_hook`` through which a signal-only mule runs offloads.

A signal-only mule loads the application like a worker and lets uWSGI's own
loop read its messages; the only code of ours that runs there is what the
application imports. So the sending side calls :func:`ensure_hook` wherever
an offload is defined or sent (``mule_offload``, ``send_call_at``, periodic
tasks, Django tasks), and the hook is in place in every process that could
receive an offload.

The hook itself is the receiving side's (:func:`uwsgi_mules.mule.hook.make_hook`):
this module does not import it. The package's ``__init__`` hands it over with
:func:`provide_hook` when ``uwsgi_mules`` is first imported, before any
offload can be defined.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..backends.base import Backend, MessageHook

__all__ = ["HOOK_MARKER", "HookFactory", "ensure_hook", "is_our_hook", "provide_hook"]

#: attribute set on our hook so it is never installed twice
HOOK_MARKER = "__uwsgi_mules_hook__"

#: makes our hook, chaining the hook the application had set (or None)
HookFactory = Callable[[MessageHook | None], MessageHook]


class _HookFactorySlot:
    """The one hook factory of the process (set once by the package's ``__init__``)."""

    factory: HookFactory | None = None


_slot = _HookFactorySlot()
_install_lock = threading.Lock()


def provide_hook(factory: HookFactory) -> None:
    """Make ``factory`` the maker of the hook :func:`ensure_hook` installs;
    it must set :data:`HOOK_MARKER` on the hooks it makes."""
    _slot.factory = factory


def is_our_hook(hook: object) -> bool:
    """Whether ``hook`` is a hook made by the provided factory."""
    return hook is not None and bool(getattr(hook, HOOK_MARKER, False))


def ensure_hook(backend: Backend) -> None:
    """Install our hook on ``backend`` once, chaining any existing hook."""
    if is_our_hook(backend.get_msg_hook()):
        return
    factory = _factory()
    with _install_lock:
        current = backend.get_msg_hook()
        if not is_our_hook(current):
            backend.set_msg_hook(factory(current))
        backend.guard_msg_hook(lambda hook: _chain_late_hook(backend, hook))


def _factory() -> HookFactory:
    factory = _slot.factory
    if factory is None:
        raise RuntimeError(
            "uwsgi-mules: no mule_msg_hook was provided (the package's __init__ provides the receiving "
            "side's hook when uwsgi_mules is imported; was uwsgi_mules.core imported on its own?)"
        )
    return factory


def _chain_late_hook(backend: Backend, hook: MessageHook) -> MessageHook:
    """A hook the application sets after ours: chained behind ours, with a warning."""
    if is_our_hook(hook):
        return hook
    backend.log(
        "uwsgi-mules: the application replaced uwsgi.mule_msg_hook after offloaded functions were "
        "imported; uwsgi-mules chained it (offloads still run, other messages go to the new hook)"
    )
    return _factory()(hook)
