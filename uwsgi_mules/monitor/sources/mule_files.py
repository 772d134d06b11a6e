"""Each mule's files in the runtime directory: its in-flight record (the task
it is running; :mod:`uwsgi_mules.mule.delivery.inflight`) and its heartbeat
(:mod:`uwsgi_mules.mule.beat`).

A record is read, never written: its state, then the recorded envelope,
whose tag is verified with the instance key before the task's path is taken
from the pickle's opcodes (:mod:`pickletools` reads them without building
any object: nothing is unpickled here).
"""

from __future__ import annotations

import pickletools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...envelope import RECORD_COUNTERS, RECORD_HEADER, RECORD_RUNNING, RECORD_STATE, EnvelopeError, Signer
from ...mule.beat import beat_path, read_beat

_MULE_FILE = re.compile(r"^mule(\d+)\.(inflight|stats|waiting)$")
#: the most bytes of a record read (its header and a message's head)
MAX_RECORD = 1 << 20


@dataclass
class RecordState:
    """What one in-flight record says."""

    running: bool
    path: str = ""  #: the running task's path, or why it is not named
    head: bytes = b""  #: the recorded bytes (tell one running call from the next)
    crashes: dict[str, int] | None = None


def mule_ids(runtime_dir: Path) -> list[int]:
    """The mules that left files in ``runtime_dir``."""
    try:
        names = [entry.name for entry in runtime_dir.iterdir()]
    except OSError:
        return []
    return sorted({int(m.group(1)) for m in map(_MULE_FILE.match, names) if m is not None})


def read_record(path: Path, signer: Signer | None) -> RecordState | None:
    """The state of the in-flight record ``path`` (None: no record)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_RECORD)
    except OSError:
        return None
    if len(data) < RECORD_HEADER:
        return None
    state, length = RECORD_STATE.unpack_from(data, 0)
    crashed, requeued, dead = RECORD_COUNTERS.unpack_from(data, RECORD_STATE.size)
    crashes = {"crashed": crashed, "requeued": requeued, "dead": dead}
    if state != RECORD_RUNNING:
        return RecordState(False, crashes=crashes)
    message = data[RECORD_HEADER : RECORD_HEADER + length]
    return RecordState(True, task_path(message, signer), message[:256], crashes)


def task_path(message: bytes, signer: Signer | None) -> str:
    """The task path in an envelope, once its tag verifies (else why not)."""
    if signer is None:
        return "(unknown: the instance key cannot be read)"
    try:
        body = signer.verified_body(message)
    except EnvelopeError:
        return "(unknown: the record does not verify, e.g. a message longer than the record)"
    try:
        for opcode, arg, _ in pickletools.genops(bytes(body)):
            if "UNICODE" in opcode.name and isinstance(arg, str):
                return arg
    except (ValueError, EOFError):
        pass
    return "(unknown: no task path in the envelope)"


def read_heartbeat(runtime_dir: Path, mule_id: int) -> dict[str, Any] | None:
    """Mule ``mule_id``'s last heartbeat (None: none written yet)."""
    return read_beat(beat_path(runtime_dir, mule_id))
