"""One mule's serving loop over a transport: uWSGI's receive function on real
uWSGI, the fake's queues on the fake. The same object runs in production
(``uwsgi_mules.mule:run``), in the fake's step mode and in its threaded mode,
and behind the ``mule_msg_hook`` of a signal-only mule.

The API::

    loop = MuleLoop(backend, mule_id=None, *, receive=None, around=None, label="mule")
    loop.start()           # import task modules, recover the task a predecessor died in, read back
                           # the waiting room, claim backlog files and re-sent dead tasks
    loop.handle(message)   # THE entry into the dispatcher for a received message, whatever its
                           # source (the C loop, the Python loop, the signal-only hook, a step):
                           # an offload runs; any other message goes to the application's hook
    loop.tend()            # one bounded batch of due calls, the replay, the duties that are due
                           # (what a signal-only mule runs after each message)
    loop.step(limit=1)     # non-blocking: tend(), then up to ``limit`` queued messages; returns
                           # how many calls ran
    loop.drain()           # step until nothing is queued for this mule and nothing is due
    loop.serve()           # blocking, until a stop is requested (real uWSGI, the fake's threads)
    loop.request_stop(signum)   # what uWSGI's SIGHUP / SIGTERM / SIGINT do (StopSignals)
    loop.stop()            # save queued + waiting + unreplayed calls (backlog dir) or log the
                           # discard; returns a StopReport; never exits (run() does os._exit)
    loop.duties            # [duty(now) -> next wall time, or None for the next wake-up]: run
                           # between batches and on idle wake-ups; picking up dead tasks that
                           # ``uwsgi-mules dead`` re-sent is one

A batch of due calls never ignores a stop and never starves the queue: at most
:data:`DUE_BATCH` due calls run between two reads of the queue, and the stop
request is checked between any two calls.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..core.registry import TASK_MODULES_ENV
from ..envelope import HEADER_SIZE, RECORD_RUNNING, SERVE_FAILED, SERVE_IDLE, SERVE_SLOW, SERVE_STOP, WireTarget
from ..errors import NotInMule
from ..idle_duties import run_idle_duties
from ..instance import BACKLOG_DIR_ENV, InsecureDirectory, backlog_dir
from ..layout.topology import DEFAULT_RECV_SIZE
from .delivery.backlog import SavedOffload
from .delivery.dead import resend_dir
from .delivery.ending import ENDED, SAVED_EARLY, SERVING, EndingMarker, generation, marker_path
from .delivery.recovery import ReplayQueue
from .delivery.stopping import Drained, StopSignals, drain_until_senders_gone, persist
from .dispatch import Around, Dispatcher, Outcome, application_hook, dispatcher_for
from .requeue import send_nowait
from .startup import start_when_possible

__all__ = ["DUE_BATCH", "MuleLoop", "StopReport"]

#: the mule loop reports messages it read to the counters in batches of this size
TAKEN_BATCH = 64
#: due calls run between two reads of the queue (a stop is checked between any two)
DUE_BATCH = 32
#: seconds between two looks for dead tasks that ``uwsgi-mules dead`` re-sent
RESEND_EVERY = 1.0
#: messages one step of drain() reads
DRAIN_CHUNK = 256
#: what step() counts as a call that ran (refused envelopes included, as uWSGI counts a message)
_COUNTED = frozenset((Outcome.RAN, Outcome.FAILED, Outcome.REJECTED, Outcome.UNREGISTERED))
_NOT_ENVELOPE = Outcome.NOT_ENVELOPE

#: duty(now) -> the next wall time it wants to run at, or None (the next wake-up)
Duty = Callable[[float], "float | None"]
#: ``mule_get_msg(signals, farms, buffer_size, timeout)``
Receive = Callable[[bool, bool, int, int], "bytes | None"]


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
        note = self.note
        if self.unreported and note is not None:  # add() counts only when someone notes
            note(self.mule_id, self.unreported)
            self.unreported = 0


class GetArgs:
    """The arguments of ``mule_get_msg(signals, farms, buffer_size, timeout)`` in each state of the loop.

    uWSGI 2.0 polls the signal sockets only with signals=False (and runs the
    handlers then). ``idle`` and ``busy`` wake up after 1 s (duties, counts to
    report); ``burst``, right after a message, polls the queues only without
    blocking: uWSGI reads its queues before its signal sockets anyway, so a
    signal waits no longer than in uWSGI's own loop. ``nowait`` reads without
    blocking while due calls or a replay still wait for their turn.
    """

    __slots__ = ("burst", "busy", "idle", "nowait")

    def __init__(self, buffer_size: int) -> None:
        self.idle = (False, True, buffer_size, 1)
        self.busy = (False, True, buffer_size, 1)
        self.nowait = (True, True, buffer_size, 0)
        # the fake too: a burst that blocked would keep due calls waiting while messages trickle in
        self.burst = self.nowait

    def next(self, bursting: bool, waiting: bool) -> tuple[bool, bool, int, int]:
        return self.burst if bursting else self.busy if waiting else self.idle


@dataclass
class StopReport:
    """What :meth:`MuleLoop.stop` did."""

    mode: str  #: "reload" or "stop"
    why: str  #: why the drain ended ("workers gone", "mercy"...)
    entries: list[SavedOffload] = field(default_factory=list)  #: queued, waiting and unreplayed calls
    saved_to: Path | None = None  #: the backlog file written
    discarded: int = 0  #: offloads logged as discarded (a stop without a backlog directory, a failed save)
    other: int = 0  #: queued messages that were not offloads

    @property
    def kept(self) -> list[SavedOffload]:
        """Entries neither saved nor discarded (a backend with no runtime directory: the caller keeps them)."""
        return self.entries if self.saved_to is None and not self.discarded else []


class MuleLoop:
    """One mule's serving loop (see the module). ``around`` is a context
    manager factory entered around every task (the Django mule closes stale
    database connections there)."""

    def __init__(self, backend: Backend, mule_id: int | None = None, *, receive: Receive | None = None,
                 around: Around | None = None, label: str = "mule") -> None:
        self.backend = backend
        self.mule_id = mule_id or backend.mule_id()
        if not self.mule_id:
            raise NotInMule("mule messages can only be received in a mule")
        topology = backend.topology()
        self.buffer_size = topology.recv_size if topology is not None else DEFAULT_RECV_SIZE
        self.label = label
        self.receive: Receive = receive or backend.receiver()
        self.wall_time = backend.wall_time
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
        self.args = GetArgs(self.buffer_size)
        # counting needs the plugin on real uWSGI: skip the call per message without it
        self.taken = TakenReport(backend.note_taken if backend.counts_taken() else None, self.mule_id)
        #: where ``uwsgi-mules dead`` puts dead tasks to send again
        self.resend_dir = self._resend_dir()
        #: the pick-up of re-sent dead tasks, and the duties features registered (the periodic scheduler)
        self.duties: list[Duty] = [self._claim_resent_duty, self._registered_duties]
        self._duty_at: dict[Duty, float] = {}
        self._next_duty = 0.0
        #: whether the last step read a message, ran a call or replayed one (drain() ends when not)
        self.progressed = False
        #: what the application's hook returned for the last message that was not an offload
        self.hook_result: object = None
        self._stop_due = self._stop_requested  # bound once: checked between any two due calls
        #: whether the stop signal's handler already saved what was queued (once per process)
        self._saved_early = False
        runtime = backend.runtime_dir()
        #: how this mule's processes ended, for what uWSGI dropped when one died during a reload
        self.ending = EndingMarker(marker_path(runtime, self.mule_id) if runtime is not None and backend.is_real
                                   else None, generation(backend.getenv))

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Import task modules, report a crashed task, claim saved offloads, catch stop signals."""
        backend = self.backend
        modules = (backend.getenv(TASK_MODULES_ENV) or "").split(",")
        for line in self.dispatcher.registry.import_modules(modules):
            backend.log(f"uwsgi-mules: mule {self.mule_id}: {line}")
        self.recover()
        self.replay.claim([d for d in self._backlog_dirs() if d is not None])
        self._claim_resent()
        if backend.is_real and threading.current_thread() is threading.main_thread():
            self.dispatcher.disarm_harakiri()  # a predecessor that died mid-task left it armed
            dropped = self.ending.what_was_dropped(self.mule_id, backend.plugin is not None)
            if dropped:
                backend.log(dropped)
            self.ending.mark(SERVING)
            self.stop_signals.on_request = self._on_stop_request
            self.stop_signals.install()
        backend.log(
            f"uwsgi-mules: {self.label} {self.mule_id} serving offloads (buffer {self.buffer_size} bytes, "
            f"{len(self.dispatcher.registry.tasks)} registered tasks)"
        )

    def recover(self) -> None:
        """Name the task a previous process of this mule died in (a respawn in
        the same process: the fake); its retry goes to the replay queue."""
        if self.record is not None:
            self.dispatcher.recover(self.record, self.mule_id)

    def _backlog_dirs(self) -> list[Path | None]:
        runtime = self.backend.runtime_dir()
        configured = self.backend.getenv(BACKLOG_DIR_ENV)
        dirs = [backlog_dir(runtime, None)]
        if configured:
            dirs.append(backlog_dir(runtime, configured))
        return dirs

    def _resend_dir(self) -> Path | None:
        base = self.dispatcher.deferral.dead_store().base
        return resend_dir(base) if base is not None else None

    def _claim_resent(self) -> int:
        """Claim the dead tasks ``uwsgi-mules dead`` re-sent; returns how many.
        The directory is made by the command: nothing is created here."""
        if self.resend_dir is None or not self.resend_dir.is_dir():
            return 0
        return self.replay.claim([self.resend_dir], record_key=False)

    def _claim_resent_duty(self, now: float) -> float:
        self._claim_resent()
        return now + RESEND_EVERY

    def _registered_duties(self, now: float) -> float | None:
        """The idle duties features registered (:mod:`uwsgi_mules.idle_duties`)."""
        return run_idle_duties(self.backend, now)

    def _save_dir(self) -> Path | None:
        return backlog_dir(self.backend.runtime_dir(), self.backend.getenv(BACKLOG_DIR_ENV))

    # -- one message ------------------------------------------------------------------------

    def handle(self, message: bytes, opened: Any = None) -> Outcome:
        """Run the offload in ``message`` (``opened``: what the C loop already
        opened), or pass any other message to the application's
        ``mule_msg_hook`` (else it is counted and logged)."""
        dispatcher = self.dispatcher
        outcome = dispatcher.handle(message, opened)
        if outcome is _NOT_ENVELOPE:  # (the loops never hand over uWSGI's b"" of a timeout)
            self.hook_result = dispatcher.pass_on(message, application_hook(self.backend))
        return outcome

    # -- between messages -------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        return bool(self.stop_signals.signum)

    def request_stop(self, signum: int = signal.SIGHUP) -> None:
        """Ask the loop to stop after the call it runs (what uWSGI's stop signals do)."""
        self.stop_signals.request(signum)

    def tend(self) -> int:
        """Send what the replay queue holds, run at most :data:`DUE_BATCH`
        due calls (stopping between two calls when a stop is requested), run
        the duties that are due; returns how many calls ran."""
        if self.replay.pending:
            self.replay.pump()
        now = self.wall_time()
        ran = 0
        calls = self.waiting.calls
        if calls and calls[0].due <= now:
            ran = self.dispatcher.run_due(self.mule_id, DUE_BATCH, self._stop_due)
        if now >= self._next_duty:
            self._run_duties(now)
        return ran

    def _run_duties(self, now: float) -> None:
        soonest = float("inf")
        for duty in list(self.duties):
            at = self._duty_at.get(duty, 0.0)
            if at <= now:
                wanted = duty(now)
                at = now if wanted is None else wanted
                self._duty_at[duty] = at
            soonest = min(soonest, at)
        self._next_duty = soonest

    def _hurry(self) -> bool:
        """Due calls wait for their turn: read without blocking (a replay
        waiting for room reads as usual: a full queue elsewhere is no reason to spin)."""
        calls = self.waiting.calls
        return bool(calls and calls[0].due <= self.wall_time())

    # -- stepping (the fake's step mode) ----------------------------------------------------

    def step(self, limit: int = 1) -> int:
        """:meth:`tend`, then up to ``limit`` queued messages without blocking;
        returns how many calls ran (due calls included)."""
        sent_before = self.replay.sent
        ran = self.tend()
        receive, nowait, handle, stop = self.receive, self.args.nowait, self.handle, self.stop_signals
        read = 0
        while read < limit and not stop.signum:
            message = receive(*nowait)
            if not message:
                break
            read += 1
            if handle(message) in _COUNTED:
                ran += 1
        self.taken.add(read)
        self.taken.flush()
        self.progressed = bool(read or ran or self.replay.sent != sent_before)
        return ran

    def drain(self) -> int:
        """Step until nothing is queued for this mule and nothing is due; returns how many calls ran."""
        total = 0
        while True:
            total += self.step(DRAIN_CHUNK)
            if not self.progressed:
                return total

    # -- serving ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve until a stop is requested (it returns then: :meth:`stop` saves)."""
        # the whole receive loop in C for plain tasks when the speedups are built
        serve = self.dispatcher.signer.serve if self.dispatcher.plain else None
        if serve is not None:
            self._serve_in_c(serve)
        else:
            self._serve_in_python()
        self.taken.flush()

    def _serve_in_python(self) -> None:
        """One message at a time through :meth:`handle`."""
        get, args, taken, handle, stop = self.receive, self.args, self.taken, self.handle, self.stop_signals
        tend, hurry, waiting, wall_time = self.tend, self._hurry, self.waiting.calls, self.wall_time
        replay = self.replay.pending
        bursting = False
        while not stop.signum:
            pressed = False
            if (waiting and waiting[0].due <= wall_time()) or replay:
                tend()  # once per message at most, and only while calls are due
                pressed = hurry()
            message = get(*(args.nowait if pressed else args.next(bursting, taken.unreported > 0)))
            bursting = bool(message)
            if not message:  # b"": timeout; None: a signal was handled
                taken.flush()
                if not pressed:
                    tend()
                continue
            taken.add(1)
            handle(message)

    def _serve_in_c(self, serve: Callable[..., Any]) -> None:
        """``Signer.serve`` runs plain tasks, up to :data:`TAKEN_BATCH` messages
        a call; what it hands back is finished by :meth:`handle` (a message it
        opened and cannot run) or the dispatcher's failure path (a task that raised)."""
        get, args, taken, stop = self.receive, self.args, self.taken, self.stop_signals
        dispatcher = self.dispatcher
        counters, tasks, record = dispatcher.counters, dispatcher.registry.tasks, self.record
        buf = record.buffer if record is not None else None
        tend, hurry, waiting, wall_time = self.tend, self._hurry, self.waiting.calls, self.wall_time
        replay = self.replay.pending
        bursting = False
        while not stop.signum:
            pressed = False
            if (waiting and waiting[0].due <= wall_time()) or replay:  # once per batch of messages
                tend()
                pressed = hurry()
            first = args.nowait if pressed else args.next(bursting, taken.unreported > 0)
            count, ran, why, value = serve(get, first, args.nowait if pressed else args.burst, tasks, buf, stop,
                                           TAKEN_BATCH)
            bursting = why > SERVE_STOP  # BATCH, IDLE, STOP: wait with signals polled
            counters.ran += ran
            taken.add(count)
            if why == SERVE_IDLE:
                taken.flush()
                if not pressed:
                    tend()
            elif why == SERVE_SLOW:
                self.handle(*value)
            elif why == SERVE_FAILED:
                exc, path, call_args, call_kwargs = value
                dispatcher.failed_in_c(exc, path, call_args, call_kwargs, record)

    # -- stop -------------------------------------------------------------------------------

    def _on_stop_request(self) -> None:
        """In the stop signal's handler, maybe in the middle of a task: clear
        the user harakiri (:meth:`Dispatcher.disarm_harakiri`) and, when a task
        is running, save what is queued now. The task may yet kill this mule,
        and uWSGI drops a dead mule's queue at a reload or a stop (without the
        C plugin); :meth:`stop` saves what arrives later."""
        self.dispatcher.disarm_harakiri()
        record = self.record
        if self._saved_early or record is None or record.buffer[0] != RECORD_RUNNING:
            return
        self._saved_early = True
        if self.stop_signals.mode == "stop" and not self.backend.getenv(BACKLOG_DIR_ENV):
            return  # a stop without a backlog directory discards by design (stop() logs it)
        try:
            self._save_queued_now()
        except Exception as exc:  # noqa: BLE001 - raised in a signal handler, it would land in the task
            self.backend.log(f"uwsgi-mules: ERROR mule {self.mule_id} could not save its queue when told to "
                             f"stop during a task ({type(exc).__name__}: {exc}); stop() tries again after it")

    def _save_queued_now(self) -> None:
        """Read every message queued now without waiting, and save the offloads (see :meth:`_on_stop_request`)."""
        get, nowait = self.receive, self.args.nowait
        drained = Drained()
        message = get(*nowait)
        while message:
            drained.add(message, self._saved_form)
            message = get(*nowait)
        if drained.other:
            self.backend.log(f"uwsgi-mules: mule {self.mule_id} discarded {drained.other} queued message(s) "
                             "that were not offloads at stop")
        where = persist(drained, self._save_dir(), f"mule{self.mule_id}")
        self.ending.mark(SAVED_EARLY)
        if where is not None:
            self.backend.log(f"uwsgi-mules: mule {self.mule_id} told to stop during a task: saved "
                             f"{len(drained.entries)} queued offload(s) ({drained.summary()}) to {where} at "
                             "once (kept if the task kills this mule)")

    def _saved_form(self, message: bytes) -> tuple[WireTarget, bytes, str] | None:
        """A queued offload as saved: target, signed body, task path; None (logged) if not genuine."""
        call = self.dispatcher.decode(message)
        if call is None:
            return None
        return call.target, bytes(memoryview(message)[HEADER_SIZE:]), call.path

    def stop(self) -> StopReport:
        """Save every offload still queued, every call waiting for its time and
        every saved offload not replayed yet (or say loudly that they are
        discarded); returns what was done. The process is not exited here."""
        backend = self.backend
        signum = self.stop_signals.signum
        mode = self.stop_signals.mode or "reload"
        name = signal.Signals(signum).name if signum else "stop"
        backend.log(f"uwsgi-mules: mule {self.mule_id} told to stop ({name}): saving queued offloads")
        get, nowait, dispatcher = self.receive, self.args.nowait, self.dispatcher

        def receive_nowait() -> bytes | None:
            return get(*nowait) or None

        drained, why = drain_until_senders_gone(
            receive_nowait, self._saved_form, backend.worker_states, float(backend.reload_mercy())
        )
        # calls waiting for their time are saved with their due time, and what
        # was not replayed yet joins what was drained; the waiting file and the
        # backlog files it came from are emptied or deleted only once the new
        # backlog file is written
        drained.add_saved(dispatcher.deferral.take_waiting(self.mule_id), "(waiting)")
        drained.add_saved(self.replay.take_unsent(), "(replay)")
        report = StopReport(mode, why, drained.entries, other=drained.other)
        if mode == "stop" and not backend.getenv(BACKLOG_DIR_ENV):
            self._discard(report, drained.summary())
        else:
            self._save(report, drained.summary())
        if drained.other:
            backend.log(
                f"uwsgi-mules: mule {self.mule_id} discarded {drained.other} queued message(s) that were not "
                "offloads at stop"
            )
        self.ending.mark(ENDED)
        return report

    def _discard(self, report: StopReport, summary: str) -> None:
        self.replay.release_sources()
        self.waiting.forget_file()
        if report.entries:
            report.discarded = len(report.entries)
            self.backend.log(
                f"uwsgi-mules: ERROR discarded {report.discarded} queued offload(s) at stop ({summary}) in mule "
                f"{self.mule_id}; set {BACKLOG_DIR_ENV} to keep them for the next start"
            )

    def _save(self, report: StopReport, summary: str) -> None:
        count = len(report.entries)
        try:
            where = persist(Drained(report.entries), self._save_dir(), f"mule{self.mule_id}")
        except (OSError, ValueError, InsecureDirectory) as exc:
            self.replay.keep_sources()  # with their progress: the next start replays what they still owe
            report.discarded = count
            self.backend.log(f"uwsgi-mules: ERROR mule {self.mule_id} could not save {count} queued "
                             f"offload(s) ({summary}): {exc}")
            return
        self.replay.release_sources()
        self.waiting.forget_file()
        report.saved_to = where
        if where is not None:
            self.backend.log(f"uwsgi-mules: mule {self.mule_id} saved {count} queued offload(s) ({summary}) "
                             f"to {where} ({report.why})")
