"""The append-only ledger every execution of a chaos task writes.

One JSON line per execution: ``{"id", "event", "attempt", "due", "at",
"pid"}``; ``event`` is ``"done"`` (the task completed) or ``"attempt"`` (it
started and is about to raise or to kill its mule). Each line is one
``O_APPEND`` write of less than ``PIPE_BUF`` bytes, so concurrent mules never
interleave their lines. ``at`` is the mule's wall clock (the virtual clock
on the fake), ``due`` the due time the sender computed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tests.support.records import read_jsonl

#: the directory of a chaos run (the ledger, the ``fixed`` marker) in the environment of mules
DIR_ENV = "CHAOS_DIR"
LEDGER_NAME = "ledger.jsonl"
#: POSIX guarantees atomic appends up to this size (Linux: 4096)
PIPE_BUF = 512
DONE = "done"
ATTEMPT = "attempt"


@dataclass(frozen=True)
class Entry:
    """One execution read back from the ledger."""

    call_id: str
    event: str
    attempt: int
    due: float
    at: float
    pid: int


def chaos_dir() -> Path:
    return Path(os.environ[DIR_ENV])


def append(call_id: str, event: str, attempt: int, due: float, at: float) -> None:
    """Write one execution line with a single ``O_APPEND`` write."""
    line = json.dumps({"id": call_id, "event": event, "attempt": attempt, "due": due, "at": at,
                       "pid": os.getpid()}) + "\n"
    data = line.encode()
    if len(data) > PIPE_BUF:
        raise ValueError(f"ledger line of {len(data)} bytes is not atomic: {line!r}")
    fd = os.open(chaos_dir() / LEDGER_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise OSError(f"short ledger write: {written} of {len(data)} bytes")


def read(directory: Path) -> list[Entry]:
    """Every complete line of the ledger in ``directory``, in write order."""
    return [Entry(str(r["id"]), str(r["event"]), int(r["attempt"]), float(r["due"]), float(r["at"]), int(r["pid"]))
            for r in read_jsonl(directory / LEDGER_NAME)]
