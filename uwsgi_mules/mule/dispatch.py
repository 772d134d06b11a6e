"""One message, one Python path: verify an envelope, run the registered task, never die of it.

Every message is checked before anything else: an envelope whose signature
does not verify with this instance's key is never unpickled; a verified one
is unpickled once; its task must be registered in this process. Whatever a
message or a task does (malformed bytes, an unknown task, ``SystemExit``,
``KeyboardInterrupt``), the mule logs one line, counts it and keeps serving.

Every received message enters here through :meth:`Dispatcher.handle`, called
by :meth:`uwsgi_mules.mule.loop.MuleLoop.handle` whatever its source (the
programmed mule's loop, the C receive loop ``Signer.serve`` with what it
already opened, the signal-only mule's hook, the fake's step mode); a due call
is checked once (:meth:`Dispatcher.handle`) and a task that raised leaves
through one path (:meth:`Dispatcher.failure`).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from .. import envelope
from ..backends.base import Backend, MessageHook, SimulatedCrash
from ..backends.selection import current_backend
from ..core.attempts import running_attempt
from ..core.hook import is_our_hook
from ..core.retry_policy import FAILED, tell_decision
from ..core.run_guards import admitted
from ..core.state import runtime_state
from ..envelope import Envelope, EnvelopeError, WireTarget
from ..layout.topology import DEFAULT_RECV_SIZE
from .deferral import DEAD, RETRY, Deferral
from .delivery.inflight import InflightRecord, record_path
from .delivery.recovery import recover_unfinished
from .requeue import send_now
from .results import store_outcome

logger = logging.getLogger("uwsgi_mules")


class Outcome(enum.Enum):
    """What happened to one message."""

    RAN = "ran"
    FAILED = "failed"  #: the task raised (logged with its traceback)
    REJECTED = "rejected"  #: claimed to be an envelope, failed verification or decoding
    UNREGISTERED = "unregistered"  #: verified, but names no registered task
    NOT_ENVELOPE = "not-envelope"  #: not ours: for the application's hook
    WAITING = "waiting"  #: not due yet: held in the mule's waiting room


_NOT_ENVELOPE = Outcome.NOT_ENVELOPE


@dataclass
class DispatchCounters:
    """Per-process counts of what the mule side did with messages."""

    ran: int = 0
    failed: int = 0
    rejected: int = 0
    unregistered: int = 0
    unhandled: int = 0  #: non-envelope messages no application hook took
    dead: int = 0  #: tasks given up after their last attempt (exceptions in ``retry_on``)


class RateLimitedLog:
    """Logs the first ``burst`` lines of a kind, then one summary line per ``interval`` seconds."""

    def __init__(self, write: Callable[[str], None], burst: int = 20, interval: float = 10.0) -> None:
        self._write = write
        self._burst = burst
        self._interval = interval
        self._seen: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def __call__(self, kind: str, line: str) -> None:
        seen = self._seen.get(kind, 0) + 1
        self._seen[kind] = seen
        if seen <= self._burst:
            self._write(line)
            return
        now = time.monotonic()
        if now - self._last.get(kind, 0.0) >= self._interval:
            hidden = self._suppressed.pop(kind, 0)
            suffix = f" ({hidden} more like it not logged)" if hidden else ""
            self._write(line + suffix)
            self._last[kind] = now
        else:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1


class RecordBook:
    """The in-flight records of one backend's mules, by mule id (shared by its dispatchers)."""

    __slots__ = ("by_mule", "lock")

    def __init__(self) -> None:
        self.by_mule: dict[int, InflightRecord] = {}
        self.lock = threading.Lock()


#: where a task found unfinished (its mule died) goes when it has retries left
Requeue = Callable[[WireTarget, bytes], object]
#: a context manager factory entered around every task
Around = Callable[[], AbstractContextManager[Any]]


class Dispatcher:
    """Runs offload envelopes for the mules of one backend (one per process,
    one per fake: see :func:`dispatcher_for`; a programmed mule makes its own
    with :meth:`sharing`).

    Its collaborators are fixed at construction: ``harakiri`` (seconds set
    around each task, 0: none), ``around`` (the Django mule's connection
    clean-up), ``on_requeue`` (where a task its mule died in goes when it has
    retries left: sent again at once by default, the programmed mule's replay
    queue there). ``records`` and ``counters`` are shared by the dispatchers
    of one backend.
    """

    def __init__(self, backend: Backend, *, harakiri: int = 0, around: Around | None = None,
                 on_requeue: Requeue | None = None, records: RecordBook | None = None,
                 counters: DispatchCounters | None = None, deferral: Deferral | None = None) -> None:
        self.backend = backend
        self.signer = backend.signer()
        self.registry = runtime_state().registry
        self.counters = DispatchCounters() if counters is None else counters
        self.log_limited = RateLimitedLog(backend.log)
        self.around: Around = nullcontext if around is None else around
        self.harakiri = harakiri
        self.on_requeue: Requeue = send_now(backend) if on_requeue is None else on_requeue
        #: True when tasks run bare (no harakiri, nothing around): the C receive loop may run them
        self.plain = around is None and not harakiri
        self.records = RecordBook() if records is None else records
        self._records = self.records.by_mule  # read once per message
        #: calls waiting for their time, retries, dead tasks (shared like the records)
        self.deferral = Deferral(backend) if deferral is None else deferral

    def sharing(self, *, around: Around | None = None, on_requeue: Requeue | None = None) -> Dispatcher:
        """A dispatcher with other collaborators, sharing this one's records and counters."""
        return Dispatcher(self.backend, harakiri=self.harakiri, around=around, on_requeue=on_requeue,
                          records=self.records, counters=self.counters, deferral=self.deferral)

    # -- in-flight records -------------------------------------------------------------

    def record(self, mule_id: int, capacity: int | None = None) -> InflightRecord | None:
        """The in-flight record of mule ``mule_id`` (created on first use)."""
        found = self._records.get(mule_id)
        if found is not None or mule_id <= 0:
            return found
        with self.records.lock:
            found = self._records.get(mule_id)
            if found is None:
                size = capacity or _recv_size(self.backend)
                directory = self.backend.runtime_dir()
                path = record_path(directory, mule_id) if directory is not None else None
                try:
                    found = InflightRecord(size, path)
                except OSError as exc:
                    self.backend.log(f"uwsgi-mules: mule {mule_id} cannot keep an in-flight record ({exc})")
                    found = InflightRecord(size)
                self._records[mule_id] = found
                self.recover(found, mule_id)  # the first use of a record in a process: did a predecessor die?
        return found

    def recover(self, record: InflightRecord, mule_id: int) -> None:
        """Name the task a previous process of this mule died in; re-queue it under ``retries``."""
        found = recover_unfinished(record, self.signer, mule_id, self.backend.log, self.deferral.bury_crashed)
        if found is not None:
            self.on_requeue(*found)

    # -- one message --------------------------------------------------------------------

    def decode(self, message: bytes) -> Envelope | None:
        """The verified call in ``message`` (a stopping mule saving its queue);
        None (counted, logged) if it is not genuine."""
        try:
            return envelope.decode(self.signer, message)
        except EnvelopeError:
            self.reject(message)
            return None

    def handle(self, message: bytes, opened: Any = None) -> Outcome:
        """Verify, decode, record and run one message: verified, decoded and
        recorded in one pass of :meth:`~uwsgi_mules.envelope.Signer.open`
        (``opened``: what the C receive loop's pass returned)."""
        mule_id = self.backend.mule_id()
        record = self._records.get(mule_id) or self.record(mule_id)
        if opened is None:
            try:
                opened = self.signer.open(message, self.registry.tasks, record.buffer if record is not None else None)
            except Exception as exc:  # noqa: BLE001 - a signed body that does not decode (unpickling raises anything)
                opened = exc
        return self.handle_opened(message, opened, record)

    def handle_opened(self, message: bytes, opened: Any, record: InflightRecord | None) -> Outcome:
        """Act on what :meth:`~uwsgi_mules.envelope.Signer.open` returned (or raised) for ``message``."""
        if type(opened) is int:
            if opened == envelope.NOT_OURS and not message.startswith(envelope.MAGIC):
                return _NOT_ENVELOPE
            self.reject(message)  # counted and logged; never unpickled
            return Outcome.REJECTED
        if isinstance(opened, BaseException):
            self.undecodable(message, opened)
            return Outcome.REJECTED
        func, path, args, kwargs, target, meta = opened
        if func is None:
            return self.refuse(path)
        if meta is not None and "due" in meta and self.deferral.hold(path, args, kwargs, target, meta):
            if record is not None:
                record.end()
            return Outcome.WAITING
        ok = self.call(func, path, args, kwargs, meta, target)
        if record is not None:
            record.end()  # not reached when the process dies: the record names the task
        return Outcome.RAN if ok else Outcome.FAILED

    def pass_on(self, message: bytes, hook: MessageHook | None) -> object:
        """A message that is not an offload: ``hook`` (the application's) takes it, else it is counted and logged."""
        if hook is not None:
            return hook(message)
        self.unhandled(message)
        return None

    def reject(self, message: bytes) -> None:
        """Count and log a message that claims to be an envelope and is not genuine."""
        self.counters.rejected += 1
        self.log_limited(
            "rejected",
            f"uwsgi-mules: mule {self.backend.mule_id()} rejected a {len(message)} bytes message: "
            f"{envelope.rejection_reason(message)} ({self.counters.rejected} rejected so far)",
        )

    def undecodable(self, message: bytes, exc: BaseException) -> None:
        """Count and log a signed message whose body does not decode."""
        self.counters.rejected += 1
        self.log_limited(
            "undecodable",
            f"uwsgi-mules: mule {self.backend.mule_id()} could not decode a signed {len(message)} bytes "
            f"envelope: {exc!r} ({self.counters.rejected} rejected so far)",
        )

    def refuse(self, path: object) -> Outcome:
        """Count and log a genuine envelope that cannot run: an unregistered
        task, or fields of the wrong types."""
        if type(path) is str and path in self.registry.tasks:
            self.counters.rejected += 1
            self.log_limited(
                "malformed",
                f"uwsgi-mules: mule {self.backend.mule_id()} refused a malformed call of {path} "
                f"({self.counters.rejected} rejected so far)",
            )
            return Outcome.REJECTED
        self.lookup(path)  # counts and logs the unregistered task
        return Outcome.UNREGISTERED

    def lookup(self, path: object) -> Callable[..., Any] | None:
        func = self.registry.tasks.get(path) if isinstance(path, str) else None
        if func is None:
            self.counters.unregistered += 1
            self.log_limited(
                f"unregistered:{path!r:.200}",
                f"uwsgi-mules: mule {self.backend.mule_id()} refused unregistered task {path!r:.200}: no "
                f"function was decorated for offloading under that name here "
                f"({self.counters.unregistered} refused so far)",
            )
        return func

    def call(self, func: Callable[..., Any], path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             meta: dict[str, Any] | None = None, target: WireTarget = 0) -> bool:
        """Call a task (due: :meth:`handle_opened` checked it); True if it
        returned, False if it raised (:meth:`failure`). A call submitted for
        its result (``meta["result"]``) stores its outcome."""
        harakiri = self.harakiri
        if harakiri:
            self.backend.set_user_harakiri(harakiri)
        result_meta = meta if isinstance(meta, dict) and meta.get("result") is not None else None
        try:
            around = self.around
            if meta is not None:
                if not admitted(self.backend, meta):  # e.g. a periodic due time that already ran (logged)
                    return True
                with running_attempt(int(meta.get("attempt", 0)) + 1), around():
                    value = func(*args, **kwargs)
            elif around is nullcontext:
                value = func(*args, **kwargs)
            else:
                with around():
                    value = func(*args, **kwargs)
            self.counters.ran += 1
            if result_meta is not None:
                store_outcome(self.backend, result_meta, value=value)
            return True
        except SimulatedCrash:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt must not kill the mule
            self.failure(exc, path, args, kwargs, meta, target, func)
            return False
        finally:
            if harakiri:
                self.backend.set_user_harakiri(0)

    def disarm_harakiri(self) -> None:
        """Clear this mule's user harakiri (``mule-harakiri``, armed around each task).

        uWSGI never clears a mule's harakiri when the mule dies: during a
        reload or a stop it sets a dead mule's pid to 0, and an armed
        harakiri then expires into ``kill(0, SIGKILL)``, the master's own
        process group. So a mule clears it when told to stop (the reload
        mercy bounds the running task from then on) and when it starts (a
        predecessor that died mid-task left it armed, to expire on this one).
        """
        if self.harakiri:
            self.backend.set_user_harakiri(0)

    def failure(self, exc: BaseException, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                meta: dict[str, Any] | None = None, target: WireTarget = 0,
                func: Callable[..., Any] | None = None) -> None:
        """A task raised (the one failure path, whether Python or the C loop
        ran it): retried or recorded as dead under its ``retry_on``, else
        reported; a call submitted for its result stores the exception; the
        task is told what was decided (a Django task records READY or FAILED)."""
        decided = self.deferral.after_failure(exc, path, args, kwargs, target, meta) if meta else None
        tell_decision(func if func is not None else self.registry.tasks.get(path), exc, decided or FAILED)
        if decided == RETRY:
            self.counters.failed += 1
            return
        if meta is not None and meta.get("result") is not None:
            store_outcome(self.backend, meta, exc=exc)
        self.failed(exc, path, args, kwargs)
        if decided == DEAD:
            self.counters.dead += 1

    def failed(self, exc: BaseException, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Count and report a task that raised."""
        self.counters.failed += 1
        self.backend.report_task_error(exc, envelope.describe_call(path, args, kwargs))

    def failed_in_c(self, exc: BaseException, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                    record: InflightRecord | None) -> None:
        """A plain task the C receive loop ran raised: :meth:`failure`, then
        its record ends (a simulated crash of the fake propagates: the mule dies)."""
        if isinstance(exc, SimulatedCrash):
            raise exc
        self.failure(exc, path, args, kwargs)
        if record is not None:
            record.end()

    def run_due(self, mule_id: int, limit: int | None = None, should_stop: Callable[[], bool] | None = None) -> int:
        """Run at most ``limit`` calls mule ``mule_id`` holds that are due now,
        none once ``should_stop()``; returns how many."""
        return self.deferral.run_due(mule_id, self.handle, limit, should_stop)

    def unhandled(self, message: bytes) -> None:
        """A non-envelope message that no application hook takes: count it, log it."""
        self.counters.unhandled += 1
        self.log_limited(
            "unhandled",
            f"uwsgi-mules: mule {self.backend.mule_id()} received a {len(message)} bytes message that is not an "
            "offload and no uwsgi.mule_msg_hook takes it; it was dropped "
            f"({self.counters.unhandled} so far)",
        )


_dispatchers: weakref.WeakKeyDictionary[Backend, Dispatcher] = weakref.WeakKeyDictionary()
_dispatchers_lock = threading.Lock()


def dispatcher_for(backend: Backend | None = None) -> Dispatcher:
    """The dispatcher of ``backend`` (the current one by default)."""
    backend = backend or current_backend()
    found = _dispatchers.get(backend)
    if found is None:
        with _dispatchers_lock:
            found = _dispatchers.get(backend)
            if found is None:
                found = Dispatcher(backend, harakiri=backend.mule_harakiri())
                _dispatchers[backend] = found
    return found


def reset_dispatchers() -> None:
    """Forget every dispatcher (tests)."""
    with _dispatchers_lock:
        _dispatchers.clear()


def handle_message(message: bytes, backend: Backend | None = None) -> bool:
    """Run the offloaded call in ``message``; True if it claimed to be an envelope
    (whether it ran, failed or was refused), False for other messages."""
    return dispatcher_for(backend).handle(message) is not _NOT_ENVELOPE


def application_hook(backend: Backend) -> MessageHook | None:
    """The ``mule_msg_hook`` the application set (the one ours chains), or None."""
    hook = backend.get_msg_hook()
    if is_our_hook(hook):
        return getattr(hook, "previous", None)
    return hook


def _recv_size(backend: Backend) -> int:
    topology = backend.topology()
    return max(topology.recv_size if topology is not None else DEFAULT_RECV_SIZE, DEFAULT_RECV_SIZE)
