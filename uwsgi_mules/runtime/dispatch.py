"""The mule side: decode an envelope, run the function, never die of it."""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable

from .. import envelope
from ..backends.base import Backend, MessageHook
from ..backends.selection import current_backend
from ..registry import TaskNotFound
from .state import runtime_state

logger = logging.getLogger("uwsgi_mules")

_MAGIC = envelope.MAGIC
_SKIP = len(envelope.MAGIC)
_loads = pickle.loads

#: attribute set on our hook so it is never installed twice
HOOK_MARKER = "__uwsgi_mules_hook__"


def decode_known(message: bytes) -> tuple[Callable[..., object], str, tuple[object, ...], dict[str, object]] | None:
    """``(function, path, args, kwargs)`` of a well-formed envelope of a task
    this process can import, else None (the caller takes the slow path,
    which reports what is wrong). Decodes without copying the payload."""
    try:
        version, path, args, kwargs = _loads(memoryview(message)[_SKIP:])
        if version != envelope.VERSION:
            return None
        return runtime_state().registry.resolve(path), path, args, kwargs
    except Exception:
        return None


def run_call(
    call: tuple[Callable[..., object], str, tuple[object, ...], dict[str, object]], backend: Backend
) -> None:
    """Run a decoded call; an exception is reported, never raised."""
    func, path, args, kwargs = call
    try:
        func(*args, **kwargs)
    except Exception as exc:
        backend.report_task_error(exc, f"{path}(args={len(args)}, kwargs={sorted(kwargs)})")


def handle_message(message: bytes, backend: Backend | None = None) -> bool:
    """Run the offloaded call in ``message``; True if it was an envelope.

    A task that raises is logged with its traceback (and reported to the
    backend); the mule keeps serving. Non-envelope messages return False.
    """
    if not message.startswith(_MAGIC):
        return False
    fast = decode_known(message)
    if fast is not None:
        run_call(fast, backend or current_backend())
        return True
    backend = backend or current_backend()
    try:
        call = envelope.decode(message)
    except envelope.EnvelopeError as exc:
        backend.report_task_error(exc, f"undecodable message of {len(message)} bytes")
        return True
    try:
        func = runtime_state().registry.resolve(call.path)
    except TaskNotFound as exc:
        backend.report_task_error(exc, call.describe())
        return True
    try:
        func(*call.args, **call.kwargs)
    except Exception as exc:
        backend.report_task_error(exc, call.describe())
    return True


def make_hook(previous: MessageHook | None) -> MessageHook:
    """A ``mule_msg_hook`` running our envelopes and passing any other
    message to the hook the application had set."""

    def uwsgi_mules_hook(message: bytes) -> object:
        if handle_message(message):
            return True
        if previous is not None:
            return previous(message)
        return None

    setattr(uwsgi_mules_hook, HOOK_MARKER, True)
    uwsgi_mules_hook.previous = previous  # type: ignore[attr-defined]
    return uwsgi_mules_hook


_install_lock = threading.Lock()


def ensure_hook(backend: Backend) -> None:
    """Install our hook on ``backend`` once, chaining any existing hook."""
    current = backend.get_msg_hook()
    if current is not None and getattr(current, HOOK_MARKER, False):
        return
    with _install_lock:
        current = backend.get_msg_hook()
        if current is None or not getattr(current, HOOK_MARKER, False):
            backend.set_msg_hook(make_hook(current))
