"""The fake's signals, timers, cron, file monitors, locks, spooler, RPC and
post-fork hook: raw ``uwsgi`` functions with uWSGI 2.0's behaviour (see
fake/signals.py, fake/clock.py, fake/locks.py, fake/spooler.py), plus the test
controls ``advance()``, ``deliver_signals()``, ``run_spooler()``,
``poll_file_monitors()``, ``fire_file_monitor()`` and ``simulate_fork()``.

A mixin of :class:`~uwsgi_mules.fake.backend.FakeUwsgi`, which sets up the
state these methods use.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..idle_duties import run_idle_duties

if TYPE_CHECKING:
    from .backend import FakeUwsgi, ProcessId


class FakeServices:
    """Signals, timers, locks, spooler, RPC and post-fork hook of a fake instance."""

    # Raw ``uwsgi`` functions with uWSGI 2.0's behaviour (see fake/signals.py,
    # fake/clock.py, fake/locks.py, fake/spooler.py), plus test controls:
    # advance(), deliver_signals(), run_spooler(), poll_file_monitors(),
    # fire_file_monitor(), simulate_fork().

    def register_signal(self, signum: int, target: str, handler: Callable[[int], object]) -> None:
        if not isinstance(target, str):
            raise TypeError(f"register_signal() argument 2 must be str, not {type(target).__name__}")
        self.signals.register(self.process, _uint8(signum), target, handler)

    def signal(self, signum: int, remote: str | None = None) -> None:
        if remote is not None:
            raise OSError(f"unable to deliver signal {_uint8(signum)} to node {remote} (the fake has no network)")
        self.signals.route(_uint8(signum))

    def signal_registered(self, signum: int) -> bool:
        return self.signals.registered(self.process, _uint8(signum))

    def signal_wait(self, signum: int | None = None) -> bytes:
        return self.signals.wait(None if signum is None else _uint8(signum), self._advance_to_next_event)

    def signal_received(self) -> int:
        return self.signals.received.get(self.process, -1)

    def add_timer(self, signum: int, seconds: int) -> None:
        if not self.schedule.add_timer(_uint8(signum), _c_int(seconds)):
            self._log("you can register max 64 timers !!!")
            raise ValueError("unable to add timer")

    def add_rb_timer(self, signum: int, seconds: int, iterations: int = 0) -> None:
        if not self.schedule.add_rb_timer(_uint8(signum), _c_int(seconds), _c_int(iterations)):
            self._log("you can register max 64 rb_timers !!!")
            raise ValueError("unable to add rb_timer")

    def add_cron(self, signum: int, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
        fields = [_c_int(v) for v in (minute, hour, day, month, weekday)]
        if not self.schedule.add_cron(_uint8(signum), *fields):
            self._log("you can register max 64 cron !!!")
            raise ValueError("unable to add cron")
        return True

    def add_file_monitor(self, signum: int, path: str) -> None:
        if not isinstance(path, str):
            raise TypeError(f"add_file_monitor() argument 2 must be str, not {type(path).__name__}")
        if not self.file_monitors.add(_uint8(signum), path):
            self._log("uwsgi_add_file_monitor: invalid filename length or more than 64 monitors")
            raise ValueError("unable to add file monitor")

    def lock(self, number: int = 0) -> None:
        self._check_lock_process()
        self.locks.lock(number, self._check_stopped)

    def unlock(self, number: int = 0) -> None:
        self._check_lock_process()
        self.locks.unlock(number)

    def is_locked(self, number: int = 0) -> bool:
        self._check_lock_process()
        return self.locks.is_locked(number)

    def _check_lock_process(self) -> None:
        if self.i_am_the_spooler():
            raise ValueError("The spooler cannot lock/unlock resources")

    def lock_count(self) -> int:
        return self.locks.count

    def i_am_the_spooler(self) -> bool:
        return self.process[0] == "spooler"

    def has_spooler(self) -> bool:
        return self.spooler.enabled

    def spooler_ordered(self) -> bool:
        return self.spooler.ordered

    def spool(self, *args: Any, **kwargs: Any) -> bytes:
        return self.spooler.spool(args, kwargs)

    def get_spooler(self) -> Callable[[dict[bytes, bytes]], object] | None:
        return self.spooler.handler

    def set_spooler(self, handler: Callable[[dict[bytes, bytes]], object] | None) -> None:
        self.spooler.handler = handler

    def get_post_fork_hook(self) -> Callable[[], object] | None:
        return self.post_fork_hook

    def set_post_fork_hook(self, hook: Callable[[], object] | None) -> None:
        self.post_fork_hook = hook

    def set_user_harakiri(self, seconds: int) -> None:
        self.user_harakiri[self.process] = _c_int(seconds)

    def register_rpc(self, name: str, func: Callable[..., object], argc: int = 0) -> bool:
        if not isinstance(name, str):
            raise TypeError(f"register_rpc() argument 1 must be str, not {type(name).__name__}")
        self.rpc_functions[name] = func
        return True

    def rpc_call(self, name: str | bytes, *args: bytes) -> bytes | None:
        func = self.rpc_functions.get(name.decode() if isinstance(name, bytes) else name)
        if func is None:
            return None
        result = func(*args)
        if result is None:
            return None
        return result.encode() if isinstance(result, str) else bytes(result)  # type: ignore[arg-type]

    def now(self) -> float:
        return self.clock.time()

    def as_spooler(self) -> contextlib.AbstractContextManager[FakeUwsgi]:
        """Run a block as the spooler process."""
        return self.as_process("spooler", 1)

    # test controls ---------------------------------------------------------------

    def advance(self, seconds: float, *, deliver: bool = True) -> int:
        """Move the virtual clock by ``seconds``, raising the signals of due
        timers, rb-timers and cron entries in time order (and of changed file
        monitors). With ``deliver`` the handlers run after each event (mule
        threads run their own). Returns how many events fired."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self.clock.elapsed + seconds
        fired = self.poll_file_monitors(deliver=deliver)
        wake = run_idle_duties(self, self.wall_time())  # uwsgi-mules' own duties (the periodic scheduler)
        while True:
            event = self.schedule.next_event(target)
            wake_at = None if wake is None else wake - (self.wall_time() - self.clock.elapsed)
            if wake_at is not None and wake_at <= target and (event is None or wake_at < event[0]):
                self.clock.elapsed = max(self.clock.elapsed, wake_at)
                wake = run_idle_duties(self, self.wall_time())
                wake = None if wake is None else max(wake, self.wall_time() + 0.001)  # time moves on
                continue
            if event is None:
                break
            at, entry = event
            self.clock.elapsed = max(self.clock.elapsed, at)
            self.schedule.fire(entry, self.signals.route)
            fired += 1
            if deliver:
                self.deliver_signals()
        self.clock.elapsed = target
        return fired

    def _advance_to_next_event(self) -> bool:
        """Jump to the next scheduled event and route it (no delivery)."""
        event = self.schedule.next_event(float("inf")) if self._has_schedule() else None
        if event is None:
            return False
        at, entry = event
        self.clock.elapsed = max(self.clock.elapsed, at)
        self.schedule.fire(entry, self.signals.route)
        return True

    def _has_schedule(self) -> bool:
        return any(t.next_at is not None for t in self.schedule.timers) or bool(self.schedule.crons)

    def deliver_signals(self, *, raise_errors: bool | None = None, timeout: float = 10.0) -> int:
        """Run pending signal handlers in the processes that would run them:
        workers, the spooler, and (in step mode) mules. In threaded mode wait
        until the mule threads took theirs. Returns how many handlers ran here."""
        raise_errors = self.raise_task_errors if raise_errors is None else raise_errors
        errors_before = len(self.task_errors)
        ran = self.signals.deliver(include_mules=not self._threads)
        if self._threads:
            deadline = time.monotonic() + timeout
            with self.queues.cond:
                while any(
                    pipe and key[0] in ("mule", "mules-pool", "farm") for key, pipe in self.signals.pipes.items()
                ):
                    if time.monotonic() >= deadline:
                        break
                    self.queues.cond.wait(0.02)
        if raise_errors and len(self.task_errors) > errors_before:
            raise self.task_errors[errors_before][1]
        return ran

    def poll_file_monitors(self, *, deliver: bool = True) -> int:
        """Raise the signal of every monitored path that changed on disk."""
        fired = self.file_monitors.changed()
        for signum in fired:
            self.signals.route(signum)
        if fired and deliver:
            self.deliver_signals()
        return len(fired)

    def fire_file_monitor(self, path: str | Path, *, deliver: bool = True) -> int:
        """Raise the signal of the monitors of ``path`` as if it changed."""
        fired = self.file_monitors.signals_for(str(path))
        if not fired:
            raise ValueError(f"no file monitor watches {str(path)!r}")
        for signum in fired:
            self.signals.route(signum)
        if deliver:
            self.deliver_signals()
        return len(fired)

    def run_spooler(self, *, raise_errors: bool | None = None) -> int:
        """One spooler scan: run its pending signals and every due task once
        (SPOOL_OK deletes, anything else keeps it for the next call)."""
        raise_errors = self.raise_task_errors if raise_errors is None else raise_errors
        errors_before = len(self.task_errors)
        if not self.spooler.enabled:
            raise ValueError("this fake has no spooler (FakeUwsgi(spooler=True))")
        self.deliver_signals(raise_errors=False)
        ran = self.spooler.run()
        if raise_errors and len(self.task_errors) > errors_before:
            raise self.task_errors[errors_before][1]
        return ran

    def simulate_fork(self) -> int:
        """Call ``post_fork_hook`` as every worker, mule and the spooler, as
        uWSGI does after forking them; returns how many processes ran it."""
        hook = self.post_fork_hook
        if hook is None:
            return 0
        processes: list[ProcessId] = [("worker", w) for w in range(1, self.workers + 1)]
        processes += [("mule", m) for m in range(1, self.mule_count + 1)]
        if self.spooler.enabled:
            processes.append(("spooler", 1))
        for process in processes:
            with self.as_process(*process):
                try:
                    hook()
                except Exception as exc:  # uWSGI clears the error and goes on
                    self.report_task_error(exc, f"post_fork_hook in {process[0]} {process[1]}")
        return len(processes)




def _uint8(value: object) -> int:
    """uWSGI parses signal numbers with ``B``: any int, wrapped mod 256."""
    if isinstance(value, float) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    return value & 0xFF


def _c_int(value: object) -> int:
    if isinstance(value, float) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    return int(value)
