"""The programmed mule: ``--mule=uwsgi_mules.mule:run``.

The mule blocks for messages (its own queue, the shared queue and its
farms), runs uwsgi-mules offload envelopes, hands any other message to the
application's ``uwsgi.mule_msg_hook`` if one is set, and runs uWSGI signal
handlers while it waits. It also keeps the delivery promises
(:mod:`uwsgi_mules.mule.delivery`): at start it reports a task its predecessor
died in and replays saved offloads; told to stop, it finishes its task and
saves what is still queued.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ..backends.base import Backend
from ..backends.selection import current_backend
from ..envelope import HEADER_SIZE, SERVE_FAILED, SERVE_IDLE, SERVE_SLOW, SERVE_STOP, WireTarget
from ..errors import NotInMule
from ..idle_duties import run_idle_duties
from ..instance import BACKLOG_DIR_ENV, InsecureDirectory, backlog_dir
from ..registry import TASK_MODULES_ENV
from ..layout.topology import DEFAULT_RECV_SIZE, ENTRY_POINT, entry_script_path
from .delivery.dead import resend_dir
from .delivery.recovery import ReplayQueue
from .delivery.stopping import StopSignals, drain_until_senders_gone, persist
from .dispatch import Dispatcher, dispatcher_for
from .requeue import send_nowait
from .startup import start_when_possible

__all__ = ["ENTRY_POINT", "MuleServer", "handle_one", "run", "script_path"]

#: the mule loop reports messages it read to the counters in batches of this size
TAKEN_BATCH = 64


def handle_one(message: bytes, backend: Backend | None = None) -> bool:
    """Handle one received message as the mule's loop does (the fake's step
    mode); True if it was an offloaded call (run, failed or refused), False
    if it was handed to the application's hook."""
    return dispatcher_for(backend or current_backend()).deliver(message)


class TakenReport:
    """Reports the messages the loop read to the queue counters, in batches
    (``note`` is None where nobody counts: real uWSGI without the plugin)."""

    __slots__ = ("mule_id", "note", "unreported")

    def __init__(self, note: Callable[[int, int], object] | None, mule_id: int) -> None:
        self.note = note
        self.mule_id = mule_id
        self.unreported = 0

    def add(self, count: int) -> None:
        if self.note is not None:
            self.unreported += count
            if self.unreported >= TAKEN_BATCH:
                self.flush()

    def flush(self) -> None:
        if self.unreported:
            self.note(self.mule_id, self.unreported)  # type: ignore[misc]
            self.unreported = 0


class GetArgs:
    """The arguments of ``mule_get_msg(signals, farms, buffer_size, timeout)`` in each state of the loop.

    uWSGI 2.0 polls the signal sockets only with signals=False (and runs the
    handlers then). ``idle`` and ``busy`` wake up after 1 s (calls held
    until their time, dead tasks re-sent, counts to report, offloads to
    replay); ``burst``, right after a message, polls the
    queues only without blocking: uWSGI reads its queues before its signal
    sockets anyway, so a signal waits no longer than in uWSGI's own loop.
    """

    __slots__ = ("burst", "busy", "idle")

    def __init__(self, buffer_size: int, is_real: bool) -> None:
        self.idle = (False, True, buffer_size, 1)
        self.busy = (False, True, buffer_size, 1)
        self.burst = (True, True, buffer_size, 0) if is_real else self.busy

    def next(self, bursting: bool, waiting: bool) -> tuple[bool, bool, int, int]:
        return self.burst if bursting else self.busy if waiting else self.idle


class MuleServer:
    """One programmed mule: start-up recovery, the serving loop, the stop protocol.

    ``around`` is a context manager factory entered around every task (the
    Django mule closes stale database connections there).
    """

    def __init__(self, backend: Backend, *, around: Callable[[], AbstractContextManager[Any]] | None = None,
                 label: str = "mule") -> None:
        self.backend = backend
        self.mule_id = backend.mule_id()
        if not self.mule_id:
            raise NotInMule("mule messages can only be received in a mule")
        topology = backend.topology()
        self.buffer_size = topology.recv_size if topology is not None else DEFAULT_RECV_SIZE
        self.label = label
        self.stop_signals = StopSignals()
        # the instance key: a refused runtime directory is logged and waited for, not a crash loop
        shared = start_when_possible(lambda: dispatcher_for(backend), backend)
        # saved offloads of a task this mule does not know are parked, never unpickled
        self.replay = ReplayQueue(backend.signer(), send_nowait(backend), backend.log, self._save_dir(),
                                  shared.registry.is_registered)
        # a task the previous process of this mule died in goes to the replay queue
        self.dispatcher: Dispatcher = shared.sharing(around=around, on_requeue=self.replay.add_sealed)
        self.record = self.dispatcher.record(self.mule_id, max(self.buffer_size, DEFAULT_RECV_SIZE))
        #: calls this mule holds until they are due (read back after a crash)
        self.waiting = self.dispatcher.deferral.room(self.mule_id)
        #: where ``uwsgi-mules dead`` puts dead tasks to send again, looked at once a second while idle
        self.resend_dir = self._resend_dir()
        self._next_resend_check = 0.0

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Import task modules, report a crashed task, replay saved offloads, catch stop signals."""
        backend = self.backend
        modules = (backend.getenv(TASK_MODULES_ENV) or "").split(",")
        for line in self.dispatcher.registry.import_modules(modules):
            backend.log(f"uwsgi-mules: mule {self.mule_id}: {line}")
        self.replay.claim([d for d in self._backlog_dirs() if d is not None])
        self._claim_resent()
        if threading.current_thread() is threading.main_thread():
            self.stop_signals.install()
        backend.log(
            f"uwsgi-mules: {self.label} {self.mule_id} serving offloads (buffer {self.buffer_size} bytes, "
            f"{len(self.dispatcher.registry.tasks)} registered tasks)"
        )

    def _backlog_dirs(self) -> list[Any]:
        runtime = self.backend.runtime_dir()
        configured = self.backend.getenv(BACKLOG_DIR_ENV)
        dirs = [backlog_dir(runtime, None)]
        if configured:
            dirs.append(backlog_dir(runtime, configured))
        return dirs

    def _resend_dir(self) -> Any:
        base = self.dispatcher.deferral.dead_store().base
        return resend_dir(base) if base is not None else None

    def _claim_resent(self) -> int:
        """Claim the dead tasks ``uwsgi-mules dead`` re-sent; returns how many.
        The directory is made by the command: nothing is created here."""
        if self.resend_dir is None or not self.resend_dir.is_dir():
            return 0
        return self.replay.claim([self.resend_dir], record_key=False)

    def _save_dir(self) -> Any:
        return backlog_dir(self.backend.runtime_dir(), self.backend.getenv(BACKLOG_DIR_ENV))

    # -- serve ------------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve until uWSGI tells the mule to stop, then save what is queued and exit."""
        self._loop()
        self.stop()

    def _loop(self) -> None:
        backend = self.backend
        get = backend.receiver()  # uWSGI's C function itself on real uWSGI
        # counting needs the plugin on real uWSGI: skip the call per message without it
        taken = TakenReport(backend.note_taken if backend.counts_taken() else None, self.mule_id)
        args = GetArgs(self.buffer_size, backend.is_real)
        self._replay_pending(get, args, taken)  # saved offloads go back to their queues between messages
        # the whole receive loop in C for plain tasks when the speedups are built
        serve = self.dispatcher.signer.serve if self.dispatcher.plain else None
        if serve is not None:
            self._serve_in_c(serve, get, args, taken)
        else:
            self._serve_in_python(get, args, taken)
        taken.flush()

    def _replay_pending(self, get: Callable[..., bytes | None], args: GetArgs, taken: TakenReport) -> None:
        """Send saved (or re-sent dead) offloads back to their queues, reading between them."""
        replay = self.replay
        deliver = self.dispatcher.deliver
        stop = self.stop_signals
        while replay.pending and not stop.signum:
            if replay.pump():
                message = get(*args.busy)
                if message:
                    taken.add(1)
                    deliver(message)

    def _between_batches(self, idle: bool, get: Callable[..., bytes | None], args: GetArgs,
                         taken: TakenReport) -> None:
        """Run the held calls that are due; while idle, once a second, claim
        dead tasks that ``uwsgi-mules dead`` re-sent. Called between batches
        of messages and on idle wake-ups only: nothing per message."""
        calls = self.waiting.calls
        if calls and calls[0].due <= self.backend.wall_time():
            self.dispatcher.run_due(self.mule_id)
        run_idle_duties(self.backend, self.backend.wall_time())  # the periodic scheduler (uwsgi_mules.periodic)
        if idle and self.resend_dir is not None and time.monotonic() >= self._next_resend_check:
            self._next_resend_check = time.monotonic() + 1.0
            if self._claim_resent():
                self._replay_pending(get, args, taken)

    def _serve_in_python(self, get: Callable[..., bytes | None], args: GetArgs, taken: TakenReport) -> None:
        """One message at a time through :meth:`Dispatcher.deliver`."""
        deliver = self.dispatcher.deliver
        stop = self.stop_signals
        between = self._between_batches
        waiting = self.waiting.calls
        wall_time = self.backend.wall_time
        bursting = False
        while not stop.signum:
            if waiting and waiting[0].due <= wall_time():
                between(False, get, args, taken)
            message = get(*args.next(bursting, taken.unreported > 0))
            bursting = bool(message)
            if not message:  # b"": timeout; None: a signal was handled
                taken.flush()
                between(True, get, args, taken)
                continue
            taken.add(1)
            deliver(message)

    def _serve_in_c(self, serve: Callable[..., Any], get: Callable[..., bytes | None], args: GetArgs,
                    taken: TakenReport) -> None:
        """``Signer.serve`` runs plain tasks; what it hands back is finished
        here from what it already opened."""
        dispatcher = self.dispatcher
        counters = dispatcher.counters
        tasks = dispatcher.registry.tasks
        record = self.record
        buf = record.buffer if record is not None else None
        stop = self.stop_signals
        between = self._between_batches
        waiting = self.waiting.calls
        wall_time = self.backend.wall_time
        bursting = False
        while not stop.signum:
            if waiting and waiting[0].due <= wall_time():  # once per batch of up to TAKEN_BATCH messages
                between(False, get, args, taken)
            first_args = args.next(bursting, taken.unreported > 0)
            count, ran, why, value = serve(get, first_args, args.burst, tasks, buf, stop, TAKEN_BATCH)
            bursting = why > SERVE_STOP  # BATCH, IDLE, STOP: wait with signals polled
            counters.ran += ran
            taken.add(count)
            if why == SERVE_IDLE:
                taken.flush()
                between(True, get, args, taken)
            elif why == SERVE_SLOW:
                dispatcher.deliver_opened(*value)
            elif why == SERVE_FAILED:
                dispatcher.failed_in_loop(*value, record)

    # -- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Save every offload still queued (or say loudly that they are discarded), then exit."""
        backend = self.backend
        signum = self.stop_signals.signum
        mode = self.stop_signals.mode
        name = signal.Signals(signum).name if signum else "stop"
        backend.log(f"uwsgi-mules: mule {self.mule_id} told to stop ({name}): saving queued offloads")
        get = backend.receiver()
        buffer_size = self.buffer_size
        dispatcher = self.dispatcher

        def receive_nowait() -> bytes | None:
            return get(False, True, buffer_size, 0) or None

        def decode(message: bytes) -> tuple[WireTarget, bytes, str] | None:
            call = dispatcher.decode(message)
            if call is None:
                return None
            return call.target, bytes(memoryview(message)[HEADER_SIZE:]), call.path

        drained, why = drain_until_senders_gone(
            receive_nowait, decode, backend.worker_states, float(backend.reload_mercy())
        )
        # calls waiting for their time are saved with their due time, and what
        # was not replayed yet joins what was drained; the waiting file and the
        # backlog files it came from are emptied or deleted only once the new
        # backlog file is written
        drained.add_saved(self.dispatcher.deferral.take_waiting(self.mule_id), "(waiting)")
        drained.add_saved(self.replay.take_unsent(), "(replay)")
        configured = backend.getenv(BACKLOG_DIR_ENV)
        if mode == "stop" and not configured:
            self.replay.release_sources()
            self.waiting.forget_file()
            if drained.entries:
                backend.log(
                    f"uwsgi-mules: ERROR mule {self.mule_id} discarded {len(drained.entries)} queued offload(s) at "
                    f"stop ({drained.summary()}); set {BACKLOG_DIR_ENV} to keep them for the next start"
                )
        else:
            try:
                where = persist(drained, self._save_dir(), f"mule{self.mule_id}")
            except (OSError, ValueError, InsecureDirectory) as exc:
                self.replay.keep_sources()  # with their progress: the next start replays what they still owe
                backend.log(
                    f"uwsgi-mules: ERROR mule {self.mule_id} could not save {len(drained.entries)} queued "
                    f"offload(s) ({drained.summary()}): {exc}"
                )
            else:
                self.replay.release_sources()
                self.waiting.forget_file()
                if where is not None:
                    backend.log(
                        f"uwsgi-mules: mule {self.mule_id} saved {len(drained.entries)} queued offload(s) "
                        f"({drained.summary()}) to {where} ({why})"
                    )
        if drained.other:
            backend.log(
                f"uwsgi-mules: mule {self.mule_id} discarded {drained.other} queued message(s) that were not "
                "offloads at stop"
            )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def run() -> None:
    """Serve offloaded calls until uWSGI stops the mule (uWSGI respawns it if it exits)."""
    server = MuleServer(current_backend())
    server.start()
    server.serve()


#: used by the fake backend in step mode instead of the endless loop
run.handle_message = handle_one  # type: ignore[attr-defined]


def script_path() -> str:
    """Path of the script form of the entry point (use it with ``lazy-apps``,
    where uWSGI 2.0 crashes callable-form mules)."""
    return entry_script_path()

