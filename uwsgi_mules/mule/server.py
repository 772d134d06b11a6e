"""The programmed mule: ``--mule=uwsgi_mules.mule:run``.

:func:`run` makes the mule's :class:`~uwsgi_mules.mule.loop.MuleLoop`, starts
it (a task its predecessor died in is reported, saved offloads are replayed),
serves until uWSGI tells the mule to stop (the task being run finishes), saves
what is still queued and exits the process: the one place that does.
"""

from __future__ import annotations

import os
import sys

from ..backends.base import Backend
from ..backends.selection import current_backend
from ..layout.topology import ENTRY_POINT, entry_script_path
from . import beat as _beat  # noqa: F401 - registers the monitor's heartbeat as an idle duty
from .dispatch import Outcome
from .hook import hooked_loop
from .loop import MuleLoop

__all__ = ["ENTRY_POINT", "handle_one", "run", "run_loop", "script_path"]


def handle_one(message: bytes, backend: Backend | None = None) -> bool:
    """Handle one received message as the mule's loop does (step handlers of
    custom programs on the fake); True if it was an offloaded call (run,
    failed or refused), False if it waits for its time or was handed to the
    application's hook."""
    loop = hooked_loop(backend or current_backend())
    assert loop is not None
    outcome = loop.handle(message)
    return outcome is not Outcome.NOT_ENVELOPE and outcome is not Outcome.WAITING


def run_loop(loop: MuleLoop) -> None:
    """Start ``loop``, serve until a stop is requested, save, exit the process."""
    loop.start()
    loop.serve()
    loop.stop()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run() -> None:
    """Serve offloaded calls until uWSGI stops the mule (uWSGI respawns it if it exits)."""
    run_loop(MuleLoop(current_backend()))


#: the fake drives this loop itself (its step mode and its threads) instead of calling run()
run.mule_loop = MuleLoop  # type: ignore[attr-defined]


def script_path() -> str:
    """Path of the script form of the entry point (use it with ``lazy-apps``,
    where uWSGI 2.0 crashes callable-form mules)."""
    return entry_script_path()
