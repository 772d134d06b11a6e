"""Tasks of the security tests: what a mule may run, and what it must never run.

Every task that runs appends one JSON line to ``$MULES_TEST_DIR/events.jsonl``
(one ``O_APPEND`` write). ``undecorated_touch`` is an application function
that was never decorated: a mule must refuse to run it whatever a message says.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from uwsgi_mules import mule_offload
from uwsgi_mules.backends.selection import current_backend

EVENTS = "events.jsonl"


def record(kind: str, **fields: Any) -> None:
    """Append one event line (mule id, pid and thread say who ran it)."""
    backend = current_backend()
    event = {"kind": kind, "mule": backend.mule_id(), "pid": os.getpid(), "thread": threading.get_ident(), **fields}
    fd = os.open(Path(os.environ["MULES_TEST_DIR"]) / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(event) + "\n").encode())
    finally:
        os.close(fd)


def read_events(workdir: Path) -> list[dict[str, Any]]:
    """Events written so far; a half-written last line is not read yet."""
    try:
        data = (Path(workdir) / EVENTS).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split("\n")[:-1] if line]


def _ping(token: str) -> None:
    record("ping", token=token)


@mule_offload(1)
def ping_mule1(token: str) -> None:
    """Proves mule 1 serves (and with which pid)."""
    _ping(token)


@mule_offload(2)
def ping_mule2(token: str) -> None:
    """Proves mule 2 serves (and with which pid)."""
    _ping(token)


PINGS = {1: ping_mule1, 2: ping_mule2}


@mule_offload(1)
def touch_task(path: str) -> None:
    """A registered task with a visible effect: sent with arguments of the wrong
    type, it must not run."""
    Path(path).touch()
    record("touch_task", path=path)


@mule_offload(1)
def exit_task(code: int) -> None:
    """Raises SystemExit in the mule: the mule must log it and keep serving."""
    record("raising", exc="SystemExit")
    raise SystemExit(code)


@mule_offload(1)
def interrupt_task() -> None:
    """Raises KeyboardInterrupt in the mule: logged, the mule keeps serving."""
    record("raising", exc="KeyboardInterrupt")
    raise KeyboardInterrupt


@mule_offload(1)
def fuzz_canary(*args: Any, **kwargs: Any) -> None:
    """Named by the fuzzed envelopes: it must never run for a forged or malformed one."""
    record("canary", args=repr(args)[:200], kwargs=repr(kwargs)[:200])


@mule_offload(1)
def fuzz_tolerated(number: int) -> None:
    """Named by signed envelopes with a wrong type in a field a call does not
    use (``target``, ``meta``): running them is allowed, and counted."""
    record("tolerated", number=number)


def undecorated_touch(path: str) -> None:
    """An application function never decorated for offloading: no message may run it."""
    Path(path).touch()
    record("undecorated", path=path)
