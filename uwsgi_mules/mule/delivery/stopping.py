"""What a programmed mule does when uWSGI tells it to stop.

uWSGI 2.0 sends mules ``SIGHUP`` on a graceful reload, a mules reload and a
graceful stop, ``SIGTERM`` on a brutal reload (``SIGTERM`` without
``die-on-term``) and ``SIGINT`` on a stop (``SIGINT``, ``SIGQUIT``, ``SIGTERM``
with ``die-on-term``), then waits ``mule-reload-mercy`` seconds before
``SIGKILL``. A full reload or stop ends only when every worker and mule has
exited, and the master then drops its queues.

So a programmed mule that is told to stop (:class:`StopSignals` only records
the request; the task being run finishes):

1. reads every message still queued for it (its queue, the shared queue,
   its farms) without running them;
2. while workers are being stopped, keeps reading until every worker has
   exited (no sender is left), bounded by the mercy; when no worker stops
   within a second it is a mules-only reload and it goes on at once;
3. saves what it read, with the saved offloads it had not replayed yet, to
   the backlog (``UWSGIMULES_BACKLOG_DIR``, else the instance's runtime
   directory, which survives a reload), durably, for the next mules to
   replay, and only then deletes the backlog files it had claimed; on a stop
   with no backlog directory it logs, at error level, how many offloads of
   which tasks were discarded.
"""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...envelope import MAGIC, WireTarget
from .backlog import SavedOffload, save

#: signals uWSGI sends a mule to stop it, and whether the instance is going away
STOP_SIGNALS: dict[int, str] = {signal.SIGHUP: "reload", signal.SIGTERM: "reload", signal.SIGINT: "stop"}
#: seconds without any worker stopping after which a mules-only reload is assumed
MULES_ONLY_PROBE = 1.0


class StopSignals:
    """Records the stop request instead of exiting at once (the running task finishes)."""

    def __init__(self) -> None:
        self.signum = 0
        #: called in the handler after each request (the mule acts at once on what cannot wait for the task)
        self.on_request: Callable[[], None] | None = None

    @property
    def requested(self) -> bool:
        return self.signum != 0

    @property
    def mode(self) -> str:
        return STOP_SIGNALS.get(self.signum, "reload") if self.signum else ""

    def install(self) -> None:
        """Install the handlers (main thread only, as Python requires)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def request(self, signum: int) -> None:
        """Record a stop request as the signal ``signum`` would."""
        self._on_signal(signum, None)

    def _on_signal(self, signum: int, frame: object) -> None:
        # a stop (SIGINT) outranks a reload signal received before it
        if not self.signum or STOP_SIGNALS.get(signum) == "stop":
            self.signum = signum
        if self.on_request is not None:
            self.on_request()


@dataclass
class Drained:
    """What a stopping mule read from its queues."""

    entries: list[SavedOffload] = field(default_factory=list)
    paths: collections.Counter[str] = field(default_factory=collections.Counter)
    other: int = 0  #: messages that were not offloads (not ours to keep)
    rejected: int = 0

    def add(self, message: bytes, decode: Callable[[bytes], tuple[WireTarget, bytes, str] | None]) -> None:
        if not message.startswith(MAGIC):
            self.other += 1
            return
        found = decode(message)
        if found is None:
            self.rejected += 1
            return
        target, body, path = found
        self.entries.append(SavedOffload(target, body, path))
        self.paths[path] += 1

    def add_saved(self, saved: list[SavedOffload], label: str) -> None:
        """Offloads read earlier (saved ones not replayed yet), counted under ``label``."""
        self.entries.extend(saved)
        if saved:
            self.paths[label] += len(saved)

    def summary(self) -> str:
        return ", ".join(f"{path} x{count}" for path, count in self.paths.most_common()) or "none"


def drain_until_senders_gone(
    receive_nowait: Callable[[], bytes | None],
    decode: Callable[[bytes], tuple[WireTarget, bytes, str] | None],
    worker_states: Callable[[], list[tuple[int, bool]] | None],
    mercy: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Drained, str]:
    """Read every queued message until no worker can send any more.

    Returns what was read and why it stopped: ``"workers gone"``,
    ``"mules-only reload"``, ``"no worker information"`` or ``"mercy"``.
    """
    drained = Drained()

    def drain() -> None:
        while True:
            message = receive_nowait()
            if not message:
                return
            drained.add(message, decode)

    start = clock()
    deadline = start + max(1.0, mercy - 2.0)
    drain()
    initial = worker_states()
    if initial is None:
        return drained, "no worker information"
    while True:
        states = worker_states() or []
        if all(pid == 0 for pid, _ in states):
            drain()
            return drained, "workers gone"
        changed = any(pid != before for (pid, _), (before, _) in zip(states, initial, strict=False))  # a worker list may shrink
        if not changed and clock() - start >= MULES_ONLY_PROBE and not any(busy for _, busy in states):
            drain()
            return drained, "mules-only reload"
        if clock() >= deadline:
            drain()
            return drained, "mercy"
        sleep(0.02)
        drain()


def persist(drained: Drained, directory: Path | None, label: str) -> Path | None:
    """Save the drained offloads; None when there was nothing to save or no directory."""
    if directory is None or not drained.entries:
        return None
    return save(directory, drained.entries, label=label)
