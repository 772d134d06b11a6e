"""The spooler of the fake: ``uwsgi.spool()`` and a task directory in memory.

Faithful to uWSGI 2.0 (``py_uwsgi_send_spool``, ``core/spooler.c``):

* ``spool(dict)`` or ``spool(**kwargs)``; keys must be bytes, bytes values
  are stored as they are, any other value through C ``PyObject_Bytes``
  (bytes-like objects and ``__bytes__`` work; ``str``, ``int``, ``float``
  raise ValueError: measured on uWSGI 2.0.31). Lengths are
  16-bit: a value of 70,000 bytes is cut to 70,000 % 65,536 bytes, and the
  whole packet over 65,535 bytes is refused ("unable to spool job").
* a bytes ``b"body"`` is kept apart (any size), ``at`` (epoch seconds) delays a task,
  ``priority`` puts it in a sub-directory that is only scanned with
  ``spooler-ordered`` (lower numbers first); without it such a task never
  runs.
* a run calls ``uwsgi.spooler(dict)`` with bytes keys and values plus
  ``spooler_task_name``: ``-2`` (SPOOL_OK) deletes the task, ``0``
  (SPOOL_IGNORE) leaves it ("unable to find the spooler function"), any
  other int, a non-int or an exception keeps it for the next scan.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import FakeUwsgi

SPOOL_OK = -2
SPOOL_RETRY = -1
SPOOL_IGNORE = 0
MAX_PACKET = 0xFFFF
ONLY_BYTES = "spooler callable dictionary must contains only bytes"


@dataclass
class SpoolTask:
    """One spooled task as the fake keeps it."""

    name: bytes
    args: dict[bytes, bytes]
    body: bytes
    at: int
    priority: bytes | None
    runs: int = 0


def _object_bytes(value: object) -> bytes:
    """A spool value as uWSGI's ``PyObject_Bytes`` makes it, or its ``ValueError``."""
    if isinstance(value, int):  # PyObject_Bytes(5) raises; Python's bytes(5) would not
        raise ValueError(ONLY_BYTES)  # noqa: TRY004 - uWSGI says ValueError
    try:
        return bytes(value)  # type: ignore[call-overload]  # objects with __bytes__ or the buffer protocol
    except Exception:  # noqa: BLE001 - uWSGI answers any error of PyObject_Bytes (a __bytes__ raising) with this one
        raise ValueError(ONLY_BYTES) from None


def _version_key(name: bytes) -> tuple[int, bytes]:
    return (int(name), b"") if name.isdigit() else (1 << 62, name)


class FakeSpooler:
    """Spooled tasks, run on demand with :meth:`run`."""

    def __init__(self, fake: FakeUwsgi, *, enabled: bool = True, ordered: bool = False) -> None:
        self._fake = fake
        self.enabled = enabled
        self.ordered = ordered
        self.directory = b"fake-spooler"
        self.handler: Callable[[dict[bytes, bytes]], object] | None = None
        self.tasks: list[SpoolTask] = []
        self.results: list[tuple[bytes, object]] = []
        self._counter = itertools.count(1)

    # -- uwsgi.spool ----------------------------------------------------------

    def spool(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        if args:
            data = args[0]
            if not isinstance(data, dict):
                raise ValueError("The argument of spooler callable must be a dictionary")
        else:
            data = kwargs
        if not data:
            raise ValueError("The argument of spooler callable must be a dictionary")
        data = dict(data)
        body = b""
        if isinstance(data.get(b"body"), bytes):  # Python 3 uWSGI looks up b"body"
            body = data.pop(b"body")
        packet: dict[bytes, bytes] = {}
        size = 0
        for key, value in data.items():
            if not isinstance(key, bytes):
                raise ValueError(ONLY_BYTES)  # noqa: TRY004 - uWSGI's error, word for word
            if not isinstance(value, bytes):
                value = _object_bytes(value)
            key, value = key[: len(key) % 0x10000], value[: len(value) % 0x10000]
            size += len(key) + 2 + len(value) + 2
            packet[key] = value
        if size > MAX_PACKET:
            self._fake.log("[uwsgi-spooler] args buffer is limited to 64k, use the 'body' for bigger values")
            raise ValueError("unable to spool job")
        if not self.enabled:
            self._fake.log("[uwsgi-spooler] no spooler available")
            raise ValueError("unable to spool job")
        priority = packet.get(b"priority") or None
        at_raw = packet.get(b"at", b"").split(b".")[0]
        at = int(at_raw) if at_raw.lstrip(b"-").isdigit() else 0
        prefix = self.directory + (b"/" + priority if priority else b"")
        name = b"%s/uwsgi_spoolfile_on_fake_%d" % (prefix, next(self._counter))
        self.tasks.append(SpoolTask(name, packet, body, at, priority))
        return name

    # -- the spooler process ------------------------------------------------------

    def due(self) -> list[SpoolTask]:
        """Tasks one scan of the spool directory would run, in scan order."""
        now = self._fake.clock.time()
        plain = [t for t in self.tasks if t.priority is None and t.at <= now]
        if not self.ordered:
            return plain
        prioritized = sorted(
            (t for t in self.tasks if t.priority is not None and t.at <= now),
            key=lambda t: _version_key(t.priority or b""),
        )
        return prioritized + plain

    def run(self) -> int:
        """One scan: run each due task once; return how many ran."""
        ran = 0
        for task in self.due():
            if task not in self.tasks:
                continue
            ran += 1
            task.runs += 1
            result = self._call(task)
            self.results.append((task.name, result))
            if result == SPOOL_OK:
                self.tasks.remove(task)
            elif result == SPOOL_IGNORE:
                self._fake.log("unable to find the spooler function, have you loaded it into the spooler process ?")
        return ran

    def _call(self, task: SpoolTask) -> int:
        handler = self.handler
        if handler is None:
            return SPOOL_IGNORE
        data = {b"spooler_task_name": task.name, **task.args}
        if task.body:
            data[b"body"] = task.body
        try:
            with self._fake.as_process("spooler", 1):
                result = handler(data)
        except Exception as exc:  # noqa: BLE001 - uWSGI prints any task error and retries the task
            self._fake.report_task_error(exc, f"spooler task {task.name.decode(errors='replace')}")
            return SPOOL_RETRY
        if isinstance(result, int):
            return int(result)
        return SPOOL_RETRY
