"""The fake's receiving side and threaded mode.

The raw receive API (``mule_get_msg``, ``farm_get_msg``) blocks like uWSGI's;
:meth:`FakeReceiving.start` runs one real thread per mule that runs its
program (and so blocks in ``mule_get_msg``) like a real mule, and
:meth:`FakeReceiving.join` waits until all queues are drained.

A mixin of :class:`~uwsgi_mules.fake.backend.FakeUwsgi`: the queues, their
condition and the poll order are its :class:`~uwsgi_mules.fake.queues.MuleQueues`.
"""

from __future__ import annotations

import logging
import runpy
import threading
import time
from typing import TYPE_CHECKING

from ..backends.base import SimulatedCrash
from ..layout.topology import DEFAULT_RECV_SIZE, ENTRY_POINT, MuleSpec, is_entry_script
from .queues import MessageQueue, MuleQueues
from .programs import import_program

if TYPE_CHECKING:
    from .backend import ProcessId

logger = logging.getLogger("uwsgi_mules.fake")


class FakeStopped(BaseException):
    """Raised inside fake mule threads when the fake is stopped."""


class FakeReceiving:
    """Blocking receives and mule threads of a fake instance."""

    #: set by :class:`~uwsgi_mules.fake.backend.FakeUwsgi`
    queues: MuleQueues

    # -- raw uwsgi API: receiving ---------------------------------------------------------

    def mule_get_msg(
        self,
        signals: bool | None = True,
        farms: bool | None = True,
        buffer_size: int = 65536,
        timeout: int = -1,
    ) -> bytes | None:
        """``uwsgi.mule_get_msg`` with uWSGI 2.0's exact behaviour, including
        its inverted ``signals`` flag: signals are handled (and None returned)
        only when ``signals`` is False or None."""
        mule = self.mule_id()
        if not mule:
            raise ValueError("you can receive mule messages only in a mule !!!")
        for name, value in (("buffer_size", buffer_size), ("timeout", timeout)):
            if not isinstance(value, int):
                raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer ({name})")
        manage_signals = not (signals is None or signals is False)
        manage_farms = not (farms is None or farms is False)
        poll_signals = not manage_signals  # uWSGI 2.0 polls signal sockets only then
        queues = self.queues.poll_order(mule, farms=manage_farms)
        deadline = None if timeout < 0 else time.monotonic() + timeout
        with self.queues.cond:
            while True:
                self._check_stopped()
                for queue in queues[:2]:
                    if queue.messages:
                        return self._take(queue, buffer_size)
                if poll_signals:
                    signum = self._pending_signal(("mule", mule))
                    if signum is not None:
                        break
                for queue in queues[2:]:
                    if queue.messages:
                        return self._take(queue, buffer_size)
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return b""
                    self.queues.cond.wait(remaining)
                else:
                    self.queues.cond.wait()
        self._dispatch_signal(signum)
        return None

    def farm_get_msg(self) -> bytes | None:
        """``uwsgi.farm_get_msg``: blocks (forever when the mule is in no farm)."""
        mule = self.mule_id()
        if not mule:
            raise ValueError("you can receive farm messages only in a mule !!!")
        queues = self.queues.farm_queues(mule)
        with self.queues.cond:
            while True:
                self._check_stopped()
                for queue in queues:
                    if queue.messages:
                        return self._take(queue, 65536)
                self.queues.cond.wait()

    def _take(self, queue: MessageQueue, buffer_size: int) -> bytes:
        message = queue.take(buffer_size)
        assert message is not None
        self._busy += 1  # released by _done() once the caller finished with it
        self._local.holding = getattr(self._local, "holding", 0) + 1
        self.queues.cond.notify_all()
        return message

    def _release_held(self) -> None:
        held = getattr(self._local, "holding", 0)
        if held:
            with self.queues.cond:
                self._busy -= held
                self._local.holding = 0
                self.queues.cond.notify_all()

    def check_stopped(self) -> None:
        """In a mule thread of a stopped fake: raise :class:`FakeStopped` (the thread ends)."""
        self._check_stopped()

    def mule_threads_running(self) -> bool:
        """True in threaded mode (mule threads receive): nothing else drains the queues."""
        return bool(self._threads)

    def _check_stopped(self) -> None:
        self._release_held()
        if self._stopped and getattr(self._local, "mule_thread", False):
            raise FakeStopped()

    # -- signals (filled in by the signal machinery) ---------------------------------------

    def _pending_signal(self, process: ProcessId) -> int | None:
        source = self.signal_source
        return source(process) if source is not None else None

    def _dispatch_signal(self, signum: int) -> None:
        dispatcher = self.signal_dispatcher
        if dispatcher is not None:
            dispatcher(signum)

    # -- threaded mode -------------------------------------------------------------------

    def start(self) -> None:
        """Start one thread per mule that runs its program like uWSGI would."""
        with self.queues.cond:
            if self._threads:
                return
        self._import_programs()
        with self.queues.cond:
            if self._threads:
                return
            self._stopped = False
            for mule in range(1, self.mule_count + 1):
                thread = threading.Thread(
                    target=self._mule_main, args=(mule,), name=f"fake-mule-{mule}", daemon=True
                )
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def _import_programs(self) -> None:
        """Import every ``pkg.module:callable`` mule program in this thread,
        before any mule thread runs (two threads importing one module at once
        could see it half initialised). An import error is left to the mule
        thread, which reports it as uWSGI would."""
        for spec in self._topology.mules:
            program = spec.program or ""
            if spec.kind == "script" and is_entry_script(program):
                program = ENTRY_POINT
            elif spec.kind != "callable":
                continue
            try:
                import_program(program)
            except Exception:  # noqa: BLE001 - reported by the mule thread that runs it
                pass

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mule threads (they leave any blocking receive at once)."""
        with self.queues.cond:
            self._stopped = True
            self.queues.cond.notify_all()
            threads, self._threads = list(self._threads), []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in threads if t.is_alive()]
        if self._threads:
            logger.warning("fake mule threads did not stop in %ss: %s", timeout, self._threads)
        self._stopped = False

    def join(self, timeout: float = 10.0) -> None:
        """Block until every queue is empty and no mule is handling a message
        (threaded mode), or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self.queues.cond:
            while self.pending() or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"fake mules did not drain in {timeout}s: {self.pending()} message(s) "
                        f"queued, {self._busy} in progress"
                    )
                self.queues.cond.wait(min(remaining, 0.05))

    def _mule_main(self, mule: int) -> None:
        spec = self._topology.mules[mule - 1]
        self._local.mule_thread = True
        with self.as_mule(mule):
            while not self._stopped:
                try:
                    self._run_program(spec)
                except FakeStopped:
                    return
                except SimulatedCrash:
                    self.loops.died(mule)
                except Exception as exc:
                    self.report_task_error(exc, f"mule {mule} program {spec.program!r}")
                if not self._stopped:  # uWSGI respawns a mule whose program returned
                    self._log(f"fake mule {mule} program returned, respawning")
                    time.sleep(0.01)

    def _run_program(self, spec: MuleSpec) -> None:
        mule = self.mule_id()
        if self.loops.factory(mule) is not None:
            self.loops.get(mule).serve()  # ends when the fake stops (FakeStopped) or the loop is told to stop
        elif spec.kind == "signal":
            while True:
                message = self._signal_only_receive()
                if message is not None:
                    self.call_hook(message)
        elif spec.kind == "callable":
            import_program(spec.program or "")()
        else:
            runpy.run_path(spec.program or "", run_name="__main__")

    def _signal_only_receive(self) -> bytes | None:
        """The receive loop of a signal-only mule: messages, farms, signals."""
        mule = self.mule_id()
        queues = self.queues.poll_order(mule)
        with self.queues.cond:
            while True:
                self._check_stopped()
                signum = self._pending_signal(("mule", mule))
                if signum is not None:
                    break
                for queue in queues:
                    if queue.messages:
                        return self._take(queue, DEFAULT_RECV_SIZE)
                self.queues.cond.wait()
        self._dispatch_signal(signum)
        return None
