"""The fake's receiving side and threaded mode: :class:`MuleThreads`.

The raw receive API (``mule_get_msg``, ``farm_get_msg``) blocks like
uWSGI's; :meth:`MuleThreads.start` runs one real thread per mule that runs
its program like a real mule (a programmed mule's own
:class:`~uwsgi_mules.mule.loop.MuleLoop` serves, a signal-only mule gets
each message through the hook), and :meth:`MuleThreads.join` waits until
all queues are drained. One owner for the threads, the stop flag and the
count of messages being handled.
"""

from __future__ import annotations

import logging
import runpy
import threading
import time
from typing import TYPE_CHECKING

from ..backends.base import SimulatedCrash
from ..layout.topology import DEFAULT_RECV_SIZE, MuleSpec
from .programs import import_program
from .queues import MessageQueue

if TYPE_CHECKING:
    from .backend import FakeUwsgi

logger = logging.getLogger("uwsgi_mules.fake")


class FakeStopped(BaseException):
    """Raised inside fake mule threads when the fake is stopped."""


class MuleThreads:
    """Blocking receives and the mule threads of one fake instance."""

    def __init__(self, fake: FakeUwsgi) -> None:
        self.fake = fake
        self.queues = fake.queues
        self.threads: list[threading.Thread] = []
        #: set while the threads are told to end
        self.stopped = False
        #: messages received and not yet released by the thread that took them
        self.busy = 0

    def running(self) -> bool:
        """True in threaded mode (mule threads receive): nothing else drains the queues."""
        return bool(self.threads)

    # -- raw uwsgi API: receiving ---------------------------------------------------------

    def mule_get_msg(self, signals: bool | None, farms: bool | None, buffer_size: int, timeout: int) -> bytes | None:
        """``uwsgi.mule_get_msg`` with uWSGI 2.0's exact behaviour, including
        its inverted ``signals`` flag: signals are handled (and None returned)
        only when ``signals`` is False or None."""
        fake = self.fake
        mule = fake.mule_id()
        if not mule:
            raise ValueError("you can receive mule messages only in a mule !!!")
        for name, value in (("buffer_size", buffer_size), ("timeout", timeout)):
            if not isinstance(value, int):
                raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer ({name})")
        poll_signals = signals is None or signals is False  # uWSGI 2.0 polls signal sockets only then
        queues = self.queues.poll_order(mule, farms=not (farms is None or farms is False))
        deadline = None if timeout < 0 else time.monotonic() + timeout
        with self.queues.cond:
            while True:
                self.check_stopped()
                for queue in queues[:2]:
                    if queue.messages:
                        return self.take(queue, buffer_size)
                if poll_signals:
                    signum = fake.signals.source(("mule", mule))
                    if signum is not None:
                        break
                for queue in queues[2:]:
                    if queue.messages:
                        return self.take(queue, buffer_size)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self.queues.cond.wait(remaining)
        fake.signals.dispatch(signum)
        return None

    def farm_get_msg(self) -> bytes | None:
        """``uwsgi.farm_get_msg``: blocks (forever when the mule is in no farm)."""
        mule = self.fake.mule_id()
        if not mule:
            raise ValueError("you can receive farm messages only in a mule !!!")
        queues = self.queues.farm_queues(mule)
        with self.queues.cond:
            while True:
                self.check_stopped()
                for queue in queues:
                    if queue.messages:
                        return self.take(queue, 65536)
                self.queues.cond.wait()

    def take(self, queue: MessageQueue, buffer_size: int) -> bytes:
        """Take a message for the calling thread (held until its next receive: ``join`` waits for it)."""
        message = queue.take(buffer_size)
        assert message is not None
        self.busy += 1
        local = self.fake.local
        local.holding = local.holding + 1
        self.queues.cond.notify_all()
        return message

    def release_held(self) -> None:
        """The calling thread finished with the messages it took."""
        local = self.fake.local
        held = local.holding
        if held:
            with self.queues.cond:
                self.busy -= held
                local.holding = 0
                self.queues.cond.notify_all()

    def check_stopped(self) -> None:
        """In a mule thread of a stopped fake: raise :class:`FakeStopped` (the thread ends)."""
        self.release_held()
        if self.stopped and self.fake.local.mule_thread:
            raise FakeStopped()

    # -- threaded mode -------------------------------------------------------------------

    def start(self) -> None:
        """Start one thread per mule that runs its program like uWSGI would."""
        with self.queues.cond:
            if self.threads:
                return
        self._import_programs()
        with self.queues.cond:
            if self.threads:
                return
            self.stopped = False
            for mule in range(1, self.fake.mule_count + 1):
                thread = threading.Thread(target=self._mule_main, args=(mule,), name=f"fake-mule-{mule}",
                                          daemon=True)
                self.threads.append(thread)
        for thread in self.threads:
            thread.start()

    def _import_programs(self) -> None:
        """Import every ``pkg.module:callable`` mule program in this thread,
        before any mule thread runs (two threads importing one module at once
        could see it half initialised). An import error is left to the mule
        thread, which reports it as uWSGI would."""
        for mule in range(1, self.fake.mule_count + 1):
            try:
                self.fake.loops.program(mule)
            except Exception:  # noqa: BLE001, S110 - reported by the mule thread that runs it
                pass

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mule threads (they leave any blocking receive at once)."""
        with self.queues.cond:
            self.stopped = True
            self.queues.cond.notify_all()
            threads, self.threads = list(self.threads), []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.threads = [t for t in threads if t.is_alive()]
        if self.threads:
            logger.warning("fake mule threads did not stop in %ss: %s", timeout, self.threads)
        self.stopped = False

    def join(self, timeout: float = 10.0) -> None:
        """Block until every queue is empty and no mule is handling a message
        (threaded mode), or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self.queues.cond:
            while self.queues.pending() or self.busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"fake mules did not drain in {timeout}s: {self.queues.pending()} message(s) "
                        f"queued, {self.busy} in progress"
                    )
                self.queues.cond.wait(min(remaining, 0.05))

    def _mule_main(self, mule: int) -> None:
        fake = self.fake
        spec = fake.topology().mules[mule - 1]
        fake.local.mule_thread = True
        with fake.as_mule(mule):
            while not self.stopped:
                try:
                    self._run_program(mule, spec)
                except FakeStopped:
                    return
                except SimulatedCrash:
                    fake.loops.died(mule)
                except Exception as exc:  # noqa: BLE001 - uWSGI respawns a mule whatever its program raised
                    fake.report_task_error(exc, f"mule {mule} program {spec.program!r}")
                if not self.stopped:  # uWSGI respawns a mule whose program returned
                    fake.log(f"fake mule {mule} program returned, respawning")
                    time.sleep(0.01)

    def _run_program(self, mule: int, spec: MuleSpec) -> None:
        fake = self.fake
        if fake.loops.factory(mule) is not None:
            fake.loops.get(mule).serve()  # ends when the fake stops (FakeStopped) or the loop is told to stop
        elif spec.kind == "signal":
            while True:
                message = self._signal_only_receive(mule)
                if message is not None:
                    fake.call_hook(message)
        elif spec.kind == "callable":
            import_program(spec.program or "")()
        else:
            runpy.run_path(spec.program or "", run_name="__main__")

    def _signal_only_receive(self, mule: int) -> bytes | None:
        """The receive loop of a signal-only mule: messages, farms, signals."""
        signals = self.fake.signals
        queues = self.queues.poll_order(mule)
        with self.queues.cond:
            while True:
                self.check_stopped()
                signum = signals.source(("mule", mule))
                if signum is not None:
                    break
                for queue in queues:
                    if queue.messages:
                        return self.take(queue, DEFAULT_RECV_SIZE)
                self.queues.cond.wait()
        signals.dispatch(signum)
        return None
