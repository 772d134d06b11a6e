"""Ready programmed-mule entry point: ``--mule=uwsgi_mules.mule:run``.

The mule blocks for messages (its own queue, the shared queue and its
farms), runs uwsgi-mules offload envelopes, hands any other message to the
application's ``uwsgi.mule_msg_hook`` if one is set, and runs uWSGI signal
handlers while it waits.
"""

from __future__ import annotations

from .backends.base import Backend
from .backends.selection import current_backend
from .runtime.dispatch import HOOK_MARKER, handle_message
from .runtime.mules import receive
from .topology import DEFAULT_RECV_SIZE, ENTRY_POINT, entry_script_path

__all__ = ["ENTRY_POINT", "handle_one", "run", "script_path"]


def handle_one(message: bytes, backend: Backend | None = None) -> bool:
    """Handle one received message; True if it was an offloaded call."""
    backend = backend or current_backend()
    if handle_message(message, backend):
        return True
    if not message:
        return False
    hook = backend.get_msg_hook()
    if hook is not None:
        previous = getattr(hook, "previous", None) if getattr(hook, HOOK_MARKER, False) else hook
        if previous is not None:
            previous(message)
            return False
    backend.log(f"uwsgi-mules: mule {backend.mule_id()} ignored a {len(message)} bytes message (no hook)")
    return False


def run() -> None:
    """Serve offloaded calls forever (uWSGI respawns the mule if it exits)."""
    backend = current_backend()
    topology = backend.topology()
    buffer_size = topology.recv_size if topology is not None else DEFAULT_RECV_SIZE
    backend.log(f"uwsgi-mules: mule {backend.mule_id()} serving offloads (buffer {buffer_size} bytes)")
    mule_id = backend.mule_id()
    while True:
        message = receive(signals=True, farms=True, buffer_size=buffer_size)
        if message:
            backend.note_taken(mule_id)
        handle_one(message, backend)


#: used by the fake backend in step mode instead of the endless loop
run.handle_message = handle_one  # type: ignore[attr-defined]

def script_path() -> str:
    """Path of the script form of the entry point (use it with ``lazy-apps``,
    where uWSGI 2.0 crashes callable-form mules)."""
    return entry_script_path()
