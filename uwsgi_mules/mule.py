"""Ready programmed-mule entry point: ``--mule=uwsgi_mules.mule:run``.

The mule blocks for messages (its own queue, the shared queue and its
farms), runs uwsgi-mules offload envelopes, hands any other message to the
application's ``uwsgi.mule_msg_hook`` if one is set, and runs uWSGI signal
handlers while it waits. It also keeps the delivery promises
(:mod:`uwsgi_mules.delivery`): at start it reports a task its predecessor
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

from .backends.base import Backend, SimulatedCrash
from .backends.selection import current_backend
from .delivery.dead import resend_dir
from .delivery.inflight import IDLE
from .delivery.recovery import ReplayQueue
from .delivery.stopping import StopSignals, drain_until_senders_gone, persist
from .envelope import (
    HEADER_SIZE,
    NOT_OURS,
    SERVE_FAILED,
    SERVE_IDLE,
    SERVE_SLOW,
    SERVE_STOP,
    WireTarget,
)
from .errors import MessageTooLarge, NotInMule
from .instance import BACKLOG_DIR_ENV, backlog_dir
from .registry import TASK_MODULES_ENV
from .runtime.dispatch import HOOK_MARKER, Dispatcher, Outcome, dispatcher_for
from .runtime.sender import prepare_route
from .runtime.targets import from_wire
from .topology import DEFAULT_RECV_SIZE, ENTRY_POINT, entry_script_path

__all__ = ["ENTRY_POINT", "MuleServer", "handle_one", "run", "script_path"]

#: the mule loop reports messages it read to the counters in batches of this size
TAKEN_BATCH = 64

_NOT_ENVELOPE = Outcome.NOT_ENVELOPE


def handle_one(message: bytes, backend: Backend | None = None) -> bool:
    """Handle one received message; True if it was an offloaded call (run,
    failed or refused), False if it waits for its due time or was handed to
    the application's hook."""
    if backend is None:
        backend = current_backend()
    dispatcher = dispatcher_for(backend)
    outcome = dispatcher.handle(message)
    if outcome is not _NOT_ENVELOPE:
        return outcome is not Outcome.WAITING
    if not message:
        return False
    hook = backend.get_msg_hook()
    if hook is not None:
        previous = getattr(hook, "previous", None) if getattr(hook, HOOK_MARKER, False) else hook
        if previous is not None:
            previous(message)
            return False
    dispatcher.unhandled(message)
    return False


def send_nowait_to_wire_target(backend: Backend, message: bytes, target: WireTarget) -> bool:
    """Try once to queue a sealed envelope where it was first sent: True if
    queued, False if the queue is full; UnknownMule/UnknownFarm/MessageTooLarge
    if it can never be sent there."""
    route = prepare_route(backend, from_wire(target))
    if len(message) > route.limit:
        raise MessageTooLarge(f"{len(message)} bytes do not fit {route.target.describe()}")
    waited = backend.send_wait(message, route.raw, 0.0)  # the plugin: no "queue full" log line
    if waited is not None:
        return waited
    return backend.mule_msg(message, route.raw)


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
        self.dispatcher: Dispatcher = dispatcher_for(backend)
        if around is not None:
            self.dispatcher.around = around
        self.around = around
        self.label = label
        self.stop_signals = StopSignals()
        self.replay = ReplayQueue(
            self.dispatcher.signer,
            lambda message, target: send_nowait_to_wire_target(backend, message, target),
            backend.log,
            self._save_dir(),
        )
        # a task the previous process of this mule died in goes to the replay queue
        self.dispatcher.on_requeue = self.replay.add_sealed
        self.record = self.dispatcher.record(self.mule_id, max(self.buffer_size, DEFAULT_RECV_SIZE))
        #: calls this mule holds until they are due (read back after a crash)
        self.waiting = self.dispatcher.deferral.room(self.mule_id)

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Import task modules, report a crashed task, replay saved offloads, catch stop signals."""
        backend = self.backend
        modules = (backend.getenv(TASK_MODULES_ENV) or "").split(",")
        for line in self.dispatcher.registry.import_modules(modules):
            backend.log(f"uwsgi-mules: mule {self.mule_id}: {line}")
        self.replay.claim([d for d in [*self._backlog_dirs(), self._resend_dir()] if d is not None])
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
        """Where ``uwsgi-mules dead`` puts dead tasks to send again."""
        base = self.dispatcher.deferral.dead_store().base
        return resend_dir(base) if base is not None else None

    def _save_dir(self) -> Any:
        return backlog_dir(self.backend.runtime_dir(), self.backend.getenv(BACKLOG_DIR_ENV))

    # -- serve ------------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve until uWSGI tells the mule to stop, then save what is queued and exit."""
        self._loop()
        self.stop()

    def _loop(self) -> None:  # noqa: C901 - the hot loop is inlined on purpose (drain rate)
        backend = self.backend
        dispatcher = self.dispatcher
        mule_id = self.mule_id
        buffer_size = self.buffer_size
        stop = self.stop_signals
        # the hot loop calls uWSGI's C function directly when the backend has it
        get = getattr(backend, "raw_mule_get_msg", None) or backend.mule_get_msg
        # counting needs the plugin on real uWSGI: skip the call per message without it
        note = backend.note_taken if getattr(backend, "plugin", True) is not None else None
        signer = dispatcher.signer
        open_envelope = signer.open  # verify, unpickle, find the task, record it (C when built)
        tasks = dispatcher.registry.tasks
        record = self.record
        buf = record.buffer if record is not None else None
        harakiri = dispatcher.harakiri
        set_harakiri = backend.set_user_harakiri
        counters = dispatcher.counters
        use_fast_call = self.around is None
        # the whole receive loop in C for plain tasks when the speedups are built
        serve = signer.serve if use_fast_call and not harakiri else None
        # mule_get_msg(signals, farms, buffer_size, timeout). uWSGI 2.0 polls the
        # signal sockets only with signals=False (and runs the handlers then);
        # with counts to report or offloads to replay, wake up after 1 s idle
        # idle, wake up every second anyway: calls held until their time, dead tasks re-sent
        idle_args = (False, True, buffer_size, 1)
        busy_args = (False, True, buffer_size, 1)
        # right after a message: a non-blocking poll of the queues only. uWSGI
        # reads its queues before its signal sockets anyway, so a signal waits no
        # longer than in uWSGI's own loop; once the queues are empty, the loop
        # blocks with the signal sockets polled again
        burst_args = (True, True, buffer_size, 0) if getattr(backend, "is_real", False) else busy_args
        bursting = False
        slow = self._handle_slow
        unreported = 0  # messages read but not yet counted (reported in batches)
        replay = self.replay
        replaying = bool(replay.pending)  # entries arrive at start and when dead tasks are re-sent
        # calls held until their time: the heap's top is looked at between batches, not per message
        waiting = self.waiting.calls
        wall_time = backend.wall_time
        run_due = self.dispatcher.run_due
        resend = self._resend_dir()
        next_resend_check = time.monotonic() + 1.0
        while not stop.signum:
            if waiting and waiting[0].due <= wall_time():
                run_due(mule_id)
            # saved offloads go back to their queues between messages
            if replaying:
                replaying = replay.pump()
            elif serve is not None:
                first_args = burst_args if bursting else busy_args if unreported else idle_args
                taken, ran, why, value = serve(get, first_args, burst_args, tasks, buf, stop, TAKEN_BATCH)
                bursting = why > SERVE_STOP  # BATCH, IDLE, STOP: wait with signals polled
                counters.ran += ran
                if note is not None:
                    unreported += taken
                    if unreported >= TAKEN_BATCH or (unreported and why == SERVE_IDLE):
                        note(mule_id, unreported)
                        unreported = 0
                if why == SERVE_IDLE and resend is not None and time.monotonic() >= next_resend_check:
                    next_resend_check = time.monotonic() + 1.0
                    replaying = replay.claim([resend]) > 0
                if why == SERVE_SLOW:
                    slow(*value)
                elif why == SERVE_FAILED:
                    exc, path, args, kwargs = value
                    if isinstance(exc, SimulatedCrash):
                        raise exc
                    dispatcher.failed(exc, path, args, kwargs)
                    if buf is not None:
                        buf[0] = IDLE
                continue
            message = get(*(burst_args if bursting else busy_args if unreported or replaying else idle_args))
            bursting = bool(message)
            if note is not None and (unreported >= TAKEN_BATCH or (unreported and not message)):
                note(mule_id, unreported)
                unreported = 0
            if not message:  # b"": timeout; None: a signal was handled
                if resend is not None and time.monotonic() >= next_resend_check:
                    next_resend_check = time.monotonic() + 1.0
                    replaying = replay.claim([resend]) > 0
                continue
            if note is not None:
                unreported += 1
            try:
                opened = open_envelope(message, tasks, buf)
            except Exception as exc:  # a signed body that does not decode: reported
                slow(message, exc)
                continue
            if type(opened) is int or opened[0] is None or opened[5] is not None or not use_fast_call:
                slow(message, opened)
                continue
            func, path, args, kwargs, _target, _meta = opened
            if harakiri:
                set_harakiri(harakiri)
            try:
                func(*args, **kwargs)
                counters.ran += 1
            except SimulatedCrash:
                raise
            except BaseException as exc:  # noqa: BLE001 - no task may kill the mule
                dispatcher.failed(exc, path, args, kwargs)
            if harakiri:
                set_harakiri(0)
            if buf is not None:
                buf[0] = IDLE
        if note is not None and unreported:
            note(mule_id, unreported)

    def _handle_slow(self, message: bytes, opened: Any) -> None:
        """A message the fast path does not run: not an envelope (the hook),
        refused (logged and counted), or a call with metadata or around a
        context (:meth:`Dispatcher.call`). ``opened`` is what
        :meth:`~uwsgi_mules.envelope.Signer.open` returned or raised."""
        dispatcher = self.dispatcher
        if isinstance(opened, BaseException):
            dispatcher.undecodable(message, opened)
        elif type(opened) is int:
            if opened == NOT_OURS:
                handle_one(message, self.backend)  # not ours (or an older format): the hook, or reported
            else:
                dispatcher.handle(message)  # a bad tag: counted and logged, never unpickled
        else:
            func, path, args, kwargs, target, meta = opened
            if func is None:
                dispatcher.refuse(path)  # unregistered, or fields of the wrong types
                return
            dispatcher.call(func, path, args, kwargs, meta, target)
            record = self.record
            if record is not None:
                record.end()

    # -- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Save every offload still queued (or say loudly that they are discarded), then exit."""
        backend = self.backend
        signum = self.stop_signals.signum
        mode = self.stop_signals.mode
        name = signal.Signals(signum).name if signum else "stop"
        backend.log(f"uwsgi-mules: mule {self.mule_id} told to stop ({name}): saving queued offloads")
        get = getattr(backend, "raw_mule_get_msg", None) or backend.mule_get_msg
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
        # calls waiting for their time are saved with their due time
        for call in self.dispatcher.deferral.take_waiting(self.mule_id):
            drained.entries.append((call.target, call.body))
            drained.paths["(waiting)"] += 1
        # what was not replayed yet joins what was drained
        for target, message in self.replay.pending:
            drained.entries.append((target, bytes(memoryview(message)[HEADER_SIZE:])))
            drained.paths["(replay)"] += 1
        self.replay.pending.clear()
        self.replay.save_rest("the mule is stopping")
        configured = backend.getenv(BACKLOG_DIR_ENV)
        if mode == "stop" and not configured:
            if drained.entries:
                backend.log(
                    f"uwsgi-mules: ERROR mule {self.mule_id} discarded {len(drained.entries)} queued offload(s) at "
                    f"stop ({drained.summary()}); set {BACKLOG_DIR_ENV} to keep them for the next start"
                )
            self.waiting.forget_file()
        else:
            try:
                where = persist(drained, self._save_dir(), f"mule{self.mule_id}")
            except OSError as exc:
                backend.log(
                    f"uwsgi-mules: ERROR mule {self.mule_id} could not save {len(drained.entries)} queued "
                    f"offload(s) ({drained.summary()}): {exc}"
                )
            else:
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

