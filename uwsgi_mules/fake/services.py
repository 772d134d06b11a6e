"""The fake master's test controls: ``advance()``, ``deliver_signals()``,
``run_spooler()``, ``poll_file_monitors()``, ``fire_file_monitor()`` and
``simulate_fork()`` (:class:`MasterControls`), which move the virtual clock
and run what uWSGI's master would (signals, timers, cron, file monitors,
spooler scans, post-fork hooks) over the fake's collaborators: its
:class:`~uwsgi_mules.fake.clock.MasterSchedule`,
:class:`~uwsgi_mules.fake.signals.FakeSignals`,
:class:`~uwsgi_mules.fake.spooler.FakeSpooler` and file monitors. The raw
``uwsgi`` functions over the same collaborators are
:class:`~uwsgi_mules.fake.backend.FakeUwsgi`'s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..idle_duties import run_idle_duties

if TYPE_CHECKING:
    from .backend import FakeUwsgi, ProcessId


class MasterControls:
    """What the tests ask the fake master to do (one per fake)."""

    def __init__(self, fake: FakeUwsgi) -> None:
        self.fake = fake

    def advance(self, seconds: float, *, deliver: bool = True) -> int:
        """Move the virtual clock by ``seconds``, raising the signals of due
        timers, rb-timers and cron entries in time order (and of changed file
        monitors). With ``deliver`` the handlers run after each event (mule
        threads run their own). Returns how many events fired."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        fake = self.fake
        clock = fake.clock
        target = clock.elapsed + seconds
        fired = self.poll_file_monitors(deliver=deliver)
        wake = run_idle_duties(fake, fake.wall_time())  # uwsgi-mules' own duties (the periodic scheduler)
        while True:
            event = fake.schedule.next_event(target)
            wake_at = None if wake is None else wake - (fake.wall_time() - clock.elapsed)
            if wake_at is not None and wake_at <= target and (event is None or wake_at < event[0]):
                clock.elapsed = max(clock.elapsed, wake_at)
                wake = run_idle_duties(fake, fake.wall_time())
                wake = None if wake is None else max(wake, fake.wall_time() + 0.001)  # time moves on
                continue
            if event is None:
                break
            at, entry = event
            clock.elapsed = max(clock.elapsed, at)
            fake.schedule.fire(entry, fake.signals.route)
            fired += 1
            if deliver:
                self.deliver_signals()
        clock.elapsed = target
        return fired

    def advance_to_next_event(self) -> bool:
        """Jump to the next scheduled event and route it (no delivery)."""
        event = self.fake.schedule.next_event(float("inf")) if self._has_schedule() else None
        if event is None:
            return False
        at, entry = event
        self.fake.clock.elapsed = max(self.fake.clock.elapsed, at)
        self.fake.schedule.fire(entry, self.fake.signals.route)
        return True

    def _has_schedule(self) -> bool:
        return any(t.next_at is not None for t in self.fake.schedule.timers) or bool(self.fake.schedule.crons)

    def deliver_signals(self, *, raise_errors: bool | None = None, timeout: float = 10.0) -> int:
        """Run pending signal handlers in the processes that would run them:
        workers, the spooler, and (in step mode) mules. In threaded mode wait
        until the mule threads took theirs. Returns how many handlers ran here."""
        with self.fake.reraising(raise_errors):
            threaded = self.fake.mule_threads_running()
            ran = self.fake.signals.deliver(include_mules=not threaded)
            if threaded:
                self._wait_for_mule_signals(timeout)
        return ran

    def _wait_for_mule_signals(self, timeout: float) -> None:
        """Threaded mode: wait (at most ``timeout`` s) until the mule threads took their signals."""
        deadline = time.monotonic() + timeout
        pipes = self.fake.signals.pipes
        with self.fake.queues.cond:
            while any(pipe and key[0] in ("mule", "mules-pool", "farm") for key, pipe in pipes.items()):
                if time.monotonic() >= deadline:
                    break
                self.fake.queues.cond.wait(0.02)

    def poll_file_monitors(self, *, deliver: bool = True) -> int:
        """Raise the signal of every monitored path that changed on disk."""
        fired = self.fake.file_monitors.changed()
        for signum in fired:
            self.fake.signals.route(signum)
        if fired and deliver:
            self.deliver_signals()
        return len(fired)

    def fire_file_monitor(self, path: str | Path, *, deliver: bool = True) -> int:
        """Raise the signal of the monitors of ``path`` as if it changed."""
        fired = self.fake.file_monitors.signals_for(str(path))
        if not fired:
            raise ValueError(f"no file monitor watches {str(path)!r}")
        for signum in fired:
            self.fake.signals.route(signum)
        if deliver:
            self.deliver_signals()
        return len(fired)

    def run_spooler(self, *, raise_errors: bool | None = None) -> int:
        """One spooler scan: run its pending signals and every due task once
        (SPOOL_OK deletes, anything else keeps it for the next call)."""
        if not self.fake.spooler.enabled:
            raise ValueError("this fake has no spooler (FakeUwsgi(spooler=True))")
        with self.fake.reraising(raise_errors):
            self.deliver_signals(raise_errors=False)
            return self.fake.spooler.run()

    def simulate_fork(self) -> int:
        """Call ``post_fork_hook`` as every worker, mule and the spooler, as
        uWSGI does after forking them; returns how many processes ran it."""
        hook = self.fake.post_fork_hook
        if hook is None:
            return 0
        processes: list[ProcessId] = [("worker", w) for w in range(1, self.fake.workers + 1)]
        processes += [("mule", m) for m in range(1, self.fake.mule_count + 1)]
        if self.fake.spooler.enabled:
            processes.append(("spooler", 1))
        for process in processes:
            with self.fake.as_process(*process):
                try:
                    hook()
                except Exception as exc:  # noqa: BLE001 - uWSGI clears any hook error and goes on
                    self.fake.report_task_error(exc, f"post_fork_hook in {process[0]} {process[1]}")
        return len(processes)


def uint8(value: object) -> int:
    """uWSGI parses signal numbers with ``B``: any int, wrapped mod 256."""
    if isinstance(value, float) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    return value & 0xFF


def c_int(value: object) -> int:
    if isinstance(value, float) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    return int(value)
