"""Ready programmed-mule entry point: ``--mule=uwsgi_mules.mule:run``.

The mule blocks for messages (its own queue, the shared queue and its
farms), runs uwsgi-mules offload envelopes, hands any other message to the
application's ``uwsgi.mule_msg_hook`` if one is set, and runs uWSGI signal
handlers while it waits.
"""

from __future__ import annotations

from .backends.base import Backend
from .backends.selection import current_backend
from .envelope import MAGIC
from .errors import NotInMule
from .runtime.dispatch import HOOK_MARKER, decode_known, handle_message
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


#: the mule loop reports messages it read to the counters in batches of this size
TAKEN_BATCH = 64


def run() -> None:
    """Serve offloaded calls forever (uWSGI respawns the mule if it exits)."""
    backend = current_backend()
    topology = backend.topology()
    buffer_size = topology.recv_size if topology is not None else DEFAULT_RECV_SIZE
    mule_id = backend.mule_id()
    if not mule_id:
        raise NotInMule("mule messages can only be received in a mule")
    backend.log(f"uwsgi-mules: mule {mule_id} serving offloads (buffer {buffer_size} bytes)")
    # the hot loop calls uWSGI's C function directly when the backend has it
    get = getattr(backend, "raw_mule_get_msg", None) or backend.mule_get_msg
    # counting needs the plugin on real uWSGI: skip the call per message without it
    note = backend.note_taken if getattr(backend, "plugin", True) is not None else None
    unreported = 0  # messages read but not yet counted (reported in batches)
    while True:
        # signals=False: uWSGI 2.0 runs signal handlers in mule_get_msg only then;
        # with counts pending, wake up after 1 s idle to report them
        message = get(False, True, buffer_size, 1 if unreported else -1)
        if note is not None and (unreported >= TAKEN_BATCH or (unreported and not message)):
            note(mule_id, unreported)
            unreported = 0
        if not message:  # b"": timeout; None: a signal was handled
            continue
        if note is not None:
            unreported += 1
        call = decode_known(message) if message.startswith(MAGIC) else None
        if call is None:
            handle_one(message, backend)  # not ours, or malformed: the slow path reports it
            continue
        func, path, args, kwargs = call  # inlined run_call(): this loop is the drain rate
        try:
            func(*args, **kwargs)
        except Exception as exc:
            backend.report_task_error(exc, f"{path}(args={len(args)}, kwargs={sorted(kwargs)})")


#: used by the fake backend in step mode instead of the endless loop
run.handle_message = handle_one  # type: ignore[attr-defined]


def script_path() -> str:
    """Path of the script form of the entry point (use it with ``lazy-apps``,
    where uWSGI 2.0 crashes callable-form mules)."""
    return entry_script_path()
