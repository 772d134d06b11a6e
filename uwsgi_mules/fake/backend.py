"""``FakeUwsgi``: an in-process uWSGI that behaves like the real one.

It keeps the shared, per-mule and per-farm queues with uWSGI's capacity
model, returns False on a full queue, ``b""`` on a receive timeout, raises
the ValueError and TypeError cases of the real module and hands back bytes.
Code under test runs "as" a process (worker 1 by default; see
:meth:`FakeUwsgi.as_mule`). Two ways to let mules work:

* step mode: :meth:`FakeUwsgi.run_pending` delivers every queued message to
  the mule that would take it and runs it in the calling thread;
* threaded mode: :meth:`FakeUwsgi.start` runs one real thread per mule that
  blocks in ``mule_get_msg`` like a real mule; :meth:`FakeUwsgi.join` waits
  until all queues are drained.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import runpy
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..backends.base import Backend, BackendStats, MessageHook, MuleTarget, SimulatedCrash
from ..backends.selection import activate, deactivate
from ..caches import CacheSpec
from ..envelope import Signer
from ..errors import QueueFull
from ..instance import BACKLOG_DIR_ENV
from ..topology import DEFAULT_RECV_SIZE, ENTRY_POINT, FarmSpec, MuleSpec, Topology, is_entry_script
from .cache import FakeCacheApi, FakeCaches
from .clock import MasterSchedule, VirtualClock
from .filemon import FileMonitors
from .locks import FakeLocks
from .queues import MessageQueue
from .services import FakeServices
from .signals import FakeSignals
from .spooler import FakeSpooler

logger = logging.getLogger("uwsgi_mules.fake")

#: (kind, number): ("worker", 1), ("mule", 2), ("master", 0), ("spooler", 1)
ProcessId = tuple[str, int]

#: attribute of a programmed-mule callable that handles one message, used in
#: step mode instead of running the callable's endless loop
STEP_HANDLER_ATTR = "handle_message"


class FakeStopped(BaseException):
    """Raised inside fake mule threads when the fake is stopped."""


class FakeUwsgi(FakeServices, FakeCacheApi, Backend):
    """A fake uWSGI instance with ``mules`` and ``farms``.

    ``mules`` is a count or a list of mule programs as in the ``mule``
    option (``None`` for signal-only, ``"pkg.mod:callable"``, ``"x.py"``);
    ``farms`` maps names to mule ids. Use it as a context manager to make it
    the active backend.
    """

    name = "fake"
    is_real = False

    def __init__(
        self,
        mules: int | Sequence[str | None | MuleSpec] = 1,
        farms: dict[str, Sequence[int]] | None = None,
        *,
        msg_size: int | None = None,
        recv_size: int | None = None,
        topology: Topology | None = None,
        workers: int = 1,
        threaded: bool = False,
        raise_task_errors: bool = False,
        locks: int = 0,
        spooler: bool = True,
        spooler_ordered: bool = False,
        key: bytes | None = None,
        backlog_dir: str | Path | None = None,
        mule_harakiri: int = 0,
        caches: Sequence[CacheSpec | str] = (),
    ) -> None:
        self._topology = topology or Topology.build(
            mules, farms, msg_size=msg_size, recv_size=recv_size, source="FakeUwsgi"
        )
        self.workers = workers
        self.threaded = threaded
        self.raise_task_errors = raise_task_errors
        self.mule_msg_hook: MessageHook | None = None
        self._hook_wrap: Callable[[MessageHook], MessageHook] | None = None
        self.log_lines: list[str] = []
        self.task_errors: list[tuple[str, BaseException]] = []
        #: messages each mule's loop reported as read (like the plugin's "taken")
        self.taken: dict[int, int] = {}

        budget = self._topology.socket_buffer
        self._shared = MessageQueue("shared", budget)
        self._mule_queues = {i: MessageQueue(f"mule{i}", budget) for i in range(1, self.mule_count + 1)}
        self._farm_queues = {f.name: MessageQueue(f"farm:{f.name}", budget) for f in self._topology.farms}

        self._cond = threading.Condition(threading.RLock())
        self._local = threading.local()
        self._stopped = False
        self._busy = 0
        self._threads: list[threading.Thread] = []
        self._active = False
        #: signal machinery plugs in here: returns a signal number pending
        #: for a process, or None
        self.signal_source: Callable[[ProcessId], int | None] | None = None
        self.signal_dispatcher: Callable[[int], object] | None = None
        # -- signals, timers, locks, spooler (see the section of that name) --
        self.clock = VirtualClock()
        self.schedule = MasterSchedule(self.clock)
        self.file_monitors = FileMonitors()
        self.signals = FakeSignals(self)
        self.locks = FakeLocks(locks)
        self.spooler = FakeSpooler(self, enabled=spooler, ordered=spooler_ordered)
        self.signal_source = self.signals.source
        self.signal_dispatcher = self.signals.dispatch
        self.post_fork_hook: Callable[[], object] | None = None
        self.rpc_functions: dict[str, Callable[..., object]] = {}
        self.user_harakiri: dict[ProcessId, int] = {}
        # -- delivery (see fake/lifecycle.py) --
        #: the instance key that signs envelopes (random per fake unless given)
        self.key = key if key is not None else os.urandom(32)
        self._signer = Signer(self.key)
        #: where shutdown() saves queued offloads and a new fake replays them from
        self.backlog_dir = Path(backlog_dir) if backlog_dir is not None else None
        self.harakiri_seconds = mule_harakiri
        #: called with the mule id when a task raises SimulatedCrash in step mode
        #: (the mule side sets it: it reports and re-queues the task, as a respawned mule does)
        self.crash_handler: Callable[[int], object] | None = None
        #: ``cache2`` caches (CacheSpec or cache2 option values), see fake/cache.py
        self.caches = FakeCaches((CacheSpec.parse(c) if isinstance(c, str) else c for c in caches), self.clock.time)
        self.caches.log = self._log

    # -- construction helpers ------------------------------------------------

    @classmethod
    def from_section(cls, section: Any, **kwargs: Any) -> FakeUwsgi:
        """A fake with the layout of a :class:`uwsgi_mules.config.Section`
        or of a uwsgiconf ``Section`` (validated), with its caches."""
        from ..config.uwsgiconf_compat import layout_of

        caches = getattr(section, "caches", None)
        if callable(caches):
            kwargs.setdefault("caches", caches())
        return cls(topology=layout_of(section), **kwargs)

    @classmethod
    def from_ini(cls, path: str | Path, section: str = "uwsgi", **kwargs: Any) -> FakeUwsgi:
        """A fake with the layout of a uWSGI INI file."""
        from ..uwsgi_args import options_from_ini

        options = options_from_ini(str(path), section)
        topology = Topology.from_options(options, source=str(path))
        kwargs.setdefault("caches", [value for key, value in options if key == "cache2" and value])
        return cls(topology=topology, **kwargs)

    @property
    def mule_count(self) -> int:
        return self._topology.mule_count

    def topology(self) -> Topology:
        return self._topology

    # -- activation -------------------------------------------------------------

    def __enter__(self) -> FakeUwsgi:
        activate(self)
        self._active = True
        if self.backlog_dir is not None:
            from .lifecycle import replay_backlog

            replay_backlog(self)
        if self.threaded:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self._active = False
            deactivate(self)

    def __repr__(self) -> str:
        farms = {f.name: list(f.mules) for f in self._topology.farms}
        return f"<FakeUwsgi mules={self.mule_count} farms={farms}>"

    # -- process identity ------------------------------------------------------------

    @property
    def process(self) -> ProcessId:
        """The fake process the calling thread runs as."""
        return getattr(self._local, "process", ("worker", 1))

    @contextlib.contextmanager
    def as_process(self, kind: str, number: int) -> Iterator[FakeUwsgi]:
        previous = getattr(self._local, "process", None)
        self._local.process = (kind, number)
        try:
            yield self
        finally:
            self._release_held()
            if previous is None:
                del self._local.process
            else:
                self._local.process = previous

    def as_mule(self, mule_id: int) -> contextlib.AbstractContextManager[FakeUwsgi]:
        """Run a block as mule ``mule_id``."""
        if not 1 <= mule_id <= self.mule_count:
            raise ValueError(f"mule {mule_id} does not exist (this fake has {self.mule_count})")
        return self.as_process("mule", mule_id)

    def as_worker(self, worker_id: int = 1) -> contextlib.AbstractContextManager[FakeUwsgi]:
        """Run a block as worker ``worker_id``."""
        return self.as_process("worker", worker_id)

    def as_master(self) -> contextlib.AbstractContextManager[FakeUwsgi]:
        return self.as_process("master", 0)

    # -- raw uwsgi API: identity -------------------------------------------------------

    def mule_id(self) -> int:
        kind, number = self.process
        return number if kind == "mule" else 0

    def worker_id(self) -> int:
        kind, number = self.process
        return number if kind == "worker" else 0

    def in_farm(self, name: str | None = None) -> bool | None:
        mule = self.mule_id()
        if not mule:
            return None
        farms = self._topology.farms_of(mule)
        if name is None:
            return True if farms else None
        if not isinstance(name, str):
            raise TypeError(f"in_farm() argument 1 must be str, not {type(name).__name__}")
        return True if name in farms else None

    # -- raw uwsgi API: sending ---------------------------------------------------------

    def mule_msg(self, message: bytes | str, target: MuleTarget = None) -> bool:
        """``uwsgi.mule_msg``: True if queued, False if the queue is full or
        the message too large; ValueError for no mules, an unknown farm or a
        ``str`` farm name (Python 3 uWSGI wants bytes)."""
        data = _message_bytes(message, "mule_msg")
        if self.mule_count < 1:
            raise ValueError("no mule configured")
        queue = self._queue_for_target(target)
        self._local.bad_target = queue is None
        if queue is None:
            self._log("mule_send_msg(): Bad file descriptor [core/mule.c line 28]")
            return False
        return self._put(queue, data)

    def send_refused_bad_target(self) -> bool:
        return bool(getattr(self._local, "bad_target", False))

    def farm_msg(self, farm: str, message: bytes | str) -> None:
        """``uwsgi.farm_msg``: returns None always, even for an unknown farm or
        a full queue (the message is then lost, as in uWSGI)."""
        if not isinstance(farm, str):
            raise TypeError(f"farm_msg() argument 1 must be str, not {type(farm).__name__}")
        data = _message_bytes(message, "farm_msg")
        queue = self._farm_queues.get(farm)
        if queue is not None and not self._put(queue, data, log_full=False):
            self._log("write(): Resource temporarily unavailable [plugins/python/uwsgi_pymodule.c]")
        return None

    def _queue_for_target(self, target: MuleTarget) -> MessageQueue | None:
        if target is None:
            return self._shared
        if isinstance(target, bytes):
            queue = self._farm_queues.get(target.decode(errors="replace"))
            if queue is None:
                raise ValueError("unknown farm")
            return queue
        if isinstance(target, int):
            if target == 0:
                return self._shared
            return self._mule_queues.get(target)  # out of range: bad fd -> False
        raise ValueError("invalid mule")

    def _put(self, queue: MessageQueue, data: bytes, *, log_full: bool = True) -> bool:
        with self._cond:
            accepted = queue.put(data)
            if accepted and _has_waiters(self._cond):
                self._cond.notify_all()
        if not accepted and log_full:
            self._log(
                f"*** MULE MSG QUEUE IS FULL: buffer size {queue.budget} bytes "
                "(you can tune it with --mule-msg-size) ***"
            )
        return accepted

    def send_wait(self, message: bytes, target: MuleTarget, timeout: float) -> bool | None:
        """Wait up to ``timeout`` seconds for room (like the plugin does)."""
        data = _message_bytes(message, "mule_msg")
        if self.mule_count < 1:
            raise ValueError("no mule configured")
        queue = self._queue_for_target(target)
        if queue is None:
            return False
        if len(data) > queue.max_message:
            queue.refused += 1
            return False
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if queue.used < queue.budget:
                    return self._put(queue, data)
                if not self._threads and not _has_waiters(self._cond):
                    queue.refused += 1
                    raise QueueFull(
                        f"queue {queue.name!r} is full ({len(queue)} messages) and this fake runs in "
                        "step mode with no thread receiving: nothing drains it until run_pending() is "
                        "called, so waiting cannot help. Call fake.run_pending() more often, use "
                        "FakeUwsgi(threaded=True), or raise the capacity (msg_size=...)"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    queue.refused += 1
                    return False
                self._cond.wait(remaining)

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
        farm_names = self._topology.farms_of(mule) if manage_farms else ()
        queues = [self._mule_queues[mule], self._shared] + [self._farm_queues[f] for f in farm_names]
        deadline = None if timeout < 0 else time.monotonic() + timeout
        with self._cond:
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
                    self._cond.wait(remaining)
                else:
                    self._cond.wait()
        self._dispatch_signal(signum)
        return None

    def farm_get_msg(self) -> bytes | None:
        """``uwsgi.farm_get_msg``: blocks (forever when the mule is in no farm)."""
        mule = self.mule_id()
        if not mule:
            raise ValueError("you can receive farm messages only in a mule !!!")
        queues = [self._farm_queues[f] for f in self._topology.farms_of(mule)]
        with self._cond:
            while True:
                self._check_stopped()
                for queue in queues:
                    if queue.messages:
                        return self._take(queue, 65536)
                self._cond.wait()

    def _take(self, queue: MessageQueue, buffer_size: int) -> bytes:
        message = queue.take(buffer_size)
        assert message is not None
        self._busy += 1  # released by _done() once the caller finished with it
        self._local.holding = getattr(self._local, "holding", 0) + 1
        self._cond.notify_all()
        return message

    def _release_held(self) -> None:
        held = getattr(self._local, "holding", 0)
        if held:
            with self._cond:
                self._busy -= held
                self._local.holding = 0
                self._cond.notify_all()

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

    # -- hook ----------------------------------------------------------------------------

    def get_msg_hook(self) -> MessageHook | None:
        return self.mule_msg_hook

    def set_msg_hook(self, hook: MessageHook | None) -> None:
        if hook is not None and self._hook_wrap is not None:
            hook = self._hook_wrap(hook)
        self.mule_msg_hook = hook

    def guard_msg_hook(self, wrap: Callable[[MessageHook], MessageHook]) -> None:
        self._hook_wrap = wrap

    # -- step mode -----------------------------------------------------------------------

    def run_pending(self, *, raise_errors: bool | None = None, limit: int | None = None) -> int:
        """Deliver every queued message to the mule that would take it and run
        it in this thread, as that mule; return how many offloaded tasks ran.

        Mules are served round-robin; each takes from its own queue, then the
        shared queue, then its farms (uWSGI's poll order). Messages for mules
        running a custom program stay queued (only that program reads them).
        With ``raise_errors`` the first exception raised by a task is re-raised
        after the run.
        """
        raise_errors = self.raise_task_errors if raise_errors is None else raise_errors
        errors_before = len(self.task_errors)
        handlers = []
        for m in range(1, self.mule_count + 1):
            found = self._step_handler(m)
            if found is not None:
                queues = [self._mule_queues[m], self._shared]
                queues += [self._farm_queues[f] for f in self._topology.farms_of(m)]
                handlers.append((("mule", m), queues, found[0], found[1]))
        ran = 0
        local = self._local
        cond = self._cond
        previous = getattr(local, "process", None)
        try:
            progressed = True
            while progressed and (limit is None or ran < limit):
                progressed = False
                for process, queues, handler, buffer_size in handlers:
                    message = None
                    with cond:
                        for queue in queues:
                            if queue.messages:
                                message = queue.take(buffer_size)
                                if _has_waiters(cond):  # a threaded sender may wait for room
                                    cond.notify_all()
                                break
                    if message is None:
                        continue
                    progressed = True
                    local.process = process
                    try:
                        if handler(message):
                            ran += 1
                    except SimulatedCrash:
                        self._log(f"fake mule {process[1]} died mid-task (simulated crash); respawned")
                        if self.crash_handler is not None:
                            self.crash_handler(process[1])
        finally:
            if previous is None:
                if hasattr(local, "process"):
                    del local.process
            else:
                local.process = previous
        if raise_errors and len(self.task_errors) > errors_before:
            raise self.task_errors[errors_before][1]
        return ran

    def _take_nowait(self, mule: int, buffer_size: int) -> bytes | None:
        queues = [self._mule_queues[mule], self._shared]
        queues += [self._farm_queues[f] for f in self._topology.farms_of(mule)]
        with self._cond:
            for queue in queues:
                if queue.messages:
                    return self._take(queue, buffer_size)
        return None

    def _step_handler(self, mule: int) -> tuple[Callable[[bytes], object], int] | None:
        spec = self._topology.mules[mule - 1]
        if spec.kind == "signal":
            return (self._call_hook, DEFAULT_RECV_SIZE)
        program_name = spec.program or ""
        if spec.kind == "script" and is_entry_script(program_name):
            program_name = ENTRY_POINT  # the script only calls the entry point
        if ":" in program_name:
            program = _import_program(program_name)
            handler = getattr(program, STEP_HANDLER_ATTR, None)
            if handler is not None:
                return (handler, self._topology.recv_size)
        return None

    def _call_hook(self, message: bytes) -> object:
        hook = self.mule_msg_hook
        if hook is None:
            self._log(f"*** mule {self.mule_id()} received a {len(message)} bytes message ***")
            return False
        try:
            return hook(message)
        except Exception as exc:  # uWSGI prints the traceback and goes on
            self.report_task_error(exc, "mule_msg_hook")
            return False

    def report_task_error(self, exc: BaseException, description: str) -> None:
        with self._cond:
            self.task_errors.append((description, exc))
        super().report_task_error(exc, description)

    # -- threaded mode -------------------------------------------------------------------

    def start(self) -> None:
        """Start one thread per mule that runs its program like uWSGI would."""
        with self._cond:
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

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mule threads (they leave any blocking receive at once)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
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
        with self._cond:
            while self.pending() or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"fake mules did not drain in {timeout}s: {self.pending()} message(s) "
                        f"queued, {self._busy} in progress"
                    )
                self._cond.wait(min(remaining, 0.05))

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
                    self._log(f"fake mule {mule} died mid-task (simulated crash); respawning")
                except Exception as exc:
                    self.report_task_error(exc, f"mule {mule} program {spec.program!r}")
                if not self._stopped:  # uWSGI respawns a mule whose program returned
                    self._log(f"fake mule {mule} program returned, respawning")
                    time.sleep(0.01)

    def _run_program(self, spec: MuleSpec) -> None:
        if spec.kind == "signal":
            while True:
                message = self._signal_only_receive()
                if message is not None:
                    self._call_hook(message)
        elif spec.kind == "callable":
            _import_program(spec.program or "")()
        else:
            runpy.run_path(spec.program or "", run_name="__main__")

    def _signal_only_receive(self) -> bytes | None:
        """The receive loop of a signal-only mule: messages, farms, signals."""
        mule = self.mule_id()
        queues = [self._mule_queues[mule], self._shared]
        queues += [self._farm_queues[f] for f in self._topology.farms_of(mule)]
        with self._cond:
            while True:
                self._check_stopped()
                signum = self._pending_signal(("mule", mule))
                if signum is not None:
                    break
                for queue in queues:
                    if queue.messages:
                        return self._take(queue, DEFAULT_RECV_SIZE)
                self._cond.wait()
        self._dispatch_signal(signum)
        return None

    # -- the instance: key, environment, lifecycle ---------------------------------------

    def signer(self) -> Signer:
        return self._signer

    def getenv(self, name: str) -> str | None:
        if name == BACKLOG_DIR_ENV and self.backlog_dir is not None:
            return str(self.backlog_dir)
        return os.environ.get(name)

    def mule_harakiri(self) -> int:
        return self.harakiri_seconds

    def worker_states(self) -> list[tuple[int, bool]]:
        return [(0, False) for _ in range(self.workers)]

    def reload(self) -> int:
        """Simulate a graceful reload (``touch-reload``, ``SIGHUP``...): every queued
        offload survives it, as on real uWSGI under uwsgi-mules; returns how many."""
        from .lifecycle import reload

        return reload(self)

    def shutdown(self) -> int:
        """Simulate a stop (``SIGINT``...): queued offloads are saved to
        ``backlog_dir`` (a new ``FakeUwsgi(backlog_dir=...)`` replays them when
        entered), or logged at error level as discarded; returns how many."""
        from .lifecycle import shutdown

        return shutdown(self)

    def all_queues(self) -> list[MessageQueue]:
        return [*self._mule_queues.values(), self._shared, *self._farm_queues.values()]

    # -- introspection -------------------------------------------------------------------

    def pending(self) -> int:
        """Messages waiting in all queues."""
        queues = [self._shared, *self._mule_queues.values(), *self._farm_queues.values()]
        return sum(len(q) for q in queues)

    def queue(self, target: MuleTarget) -> MessageQueue:
        """The queue a ``mule_msg`` target writes to (for assertions)."""
        if isinstance(target, str):
            target = target.encode()
        queue = self._queue_for_target(target)
        if queue is None:
            raise ValueError(f"no queue for target {target!r}")
        return queue

    def stats(self) -> BackendStats:
        queues = {"shared": self._shared.counters()}
        queues.update({f"mule{i}": q.counters() for i, q in self._mule_queues.items()})
        queues.update({f"farm:{n}": q.counters() for n, q in self._farm_queues.items()})
        return BackendStats(queues)

    def note_taken(self, mule_id: int, count: int = 1) -> None:
        with self._cond:
            self.taken[mule_id] = self.taken.get(mule_id, 0) + count

    def log(self, message: str) -> None:
        self._log(message)

    def _log(self, line: str) -> None:
        with self._cond:
            self.log_lines.append(line)
        logger.warning("%s", line)

def _has_waiters(cond: threading.Condition) -> bool:
    """Whether a thread waits on ``cond`` (skips useless notifications in
    step mode; CPython's Condition keeps its waiters in ``_waiters``, and
    any other implementation is simply always notified)."""
    return bool(getattr(cond, "_waiters", True))


def _message_bytes(message: object, function: str) -> bytes:
    """uWSGI parses messages with ``s#``: str (UTF-8) or a bytes-like object."""
    if isinstance(message, str):
        return message.encode()
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError(f"{function}() argument 1 must be str or read-only bytes-like object, not {type(message).__name__}")


def _import_program(program: str) -> Callable[[], object]:
    module_name, _, attr = program.partition(":")
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part)
    return target


__all__ = ["FakeStopped", "FakeUwsgi", "FarmSpec", "MuleSpec", "ProcessId"]
