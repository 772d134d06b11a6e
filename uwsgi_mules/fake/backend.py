"""``FakeUwsgi``: an in-process uWSGI that behaves like the real one.

It keeps the shared, per-mule and per-farm queues with uWSGI's capacity
model, returns False on a full queue, ``b""`` on a receive timeout, raises
the ValueError and TypeError cases of the real module and hands back bytes.
Code under test runs "as" a process (worker 1 by default; see
:meth:`FakeUwsgi.as_mule`). Two ways to let mules work:

* step mode: :meth:`FakeUwsgi.run_pending` lets every mule work in the
  calling thread (a programmed mule's own :class:`~uwsgi_mules.mule.loop.MuleLoop`
  steps, a signal-only mule's hook gets each message);
* threaded mode: :meth:`FakeUwsgi.start` runs one real thread per mule that
  blocks in ``mule_get_msg`` like a real mule; :meth:`FakeUwsgi.join` waits
  until all queues are drained.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, BackendStats, MessageHook, MuleTarget
from ..backends.selection import activate, deactivate
from ..envelope import Signer
from ..instance import BACKLOG_DIR_ENV
from ..layout.caches import CacheSpec
from ..layout.topology import FarmSpec, MuleSpec, Topology
from ..mule.delivery.dead import DeadTask
from ..mule.dispatch import dispatcher_for
from .cache import FakeCaches, as_bytes
from .clock import MasterSchedule, VirtualClock
from .filemon import FileMonitors
from .locks import FakeLocks
from .loops import FakeMuleLoops
from .queues import MessageQueue, MuleQueues
from .services import MasterControls, c_int, uint8
from .signals import FakeSignals
from .spooler import FakeSpooler
from .stepmode import FakeStepMode
from .threads import FakeStopped, MuleThreads

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

logger = logging.getLogger("uwsgi_mules.fake")

#: (kind, number): ("worker", 1), ("mule", 2), ("master", 0), ("spooler", 1)
ProcessId = tuple[str, int]

#: the process code runs as when it did not say (``as_process``)
DEFAULT_PROCESS: ProcessId = ("worker", 1)


class ThreadState(threading.local):
    """What a fake knows per thread. The class attributes are the defaults:
    reading an attribute a ``threading.local`` lacks raises (and catching
    that costs more than the rest of a send)."""

    #: the fake process this thread runs as
    process: ProcessId = DEFAULT_PROCESS
    #: the last mule_msg was refused for a bad target (not a full queue)
    bad_target = False
    #: messages received and not yet released (threaded mode's ``join``)
    holding = 0
    #: this is one of the fake's mule threads
    mule_thread = False


class FakeUwsgi(Backend):
    """A fake uWSGI instance with ``mules`` and ``farms``: the ``uwsgi`` API
    forwarded to its parts, each the one owner of its state: the queues
    (:class:`MuleQueues`), the blocking receives and mule threads
    (:class:`MuleThreads`), the mule loops (:class:`FakeMuleLoops`) and step
    mode (:class:`FakeStepMode`), the master's services (clock, schedule,
    signals, locks, spooler, file monitors, caches) and its test controls
    (:class:`MasterControls`).

    ``mules`` is a count or a list of mule programs as in the ``mule``
    option (``None`` for signal-only, ``"pkg.mod:callable"``, ``"x.py"``);
    ``farms`` maps names to mule ids. Use it as a context manager to make it
    the active backend.
    """

    name = "fake"
    is_real = False

    def __init__(
        self,
        mules: int | Sequence[str | MuleSpec | None] = 1,
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
        self._init_records()
        #: the queues, their lock and condition (which also guards the fake's own lists)
        self.queues = MuleQueues(self._topology)
        self._cond = self.queues.cond
        self.local = ThreadState()
        #: a plain weak reference kept alive: ``weakref.ref(fake)`` then returns
        #: it instead of making (and freeing) one, which every lookup of the fake
        #: in a WeakKeyDictionary does (the dispatcher, once per message)
        self._weakref = weakref.ref(self)
        self._active = False
        #: the blocking receives and the mule threads of threaded mode
        self.mule_threads = MuleThreads(self)
        self._init_services(locks, spooler, spooler_ordered, caches)
        # -- delivery: the mule loops keep the promises, as on real uWSGI --
        #: the instance key that signs envelopes (random per fake unless given)
        self.key = key if key is not None else os.urandom(32)
        self._signer = Signer(self.key)
        #: where shutdown() saves queued offloads and a new fake replays them from
        self.backlog_dir = Path(backlog_dir) if backlog_dir is not None else None
        self.harakiri_seconds = mule_harakiri
        #: the loops of programmed mules (the same MuleLoop as on real uWSGI) and step mode
        self.loops = FakeMuleLoops(self)
        self.stepper = FakeStepMode(self)

    def _init_records(self) -> None:
        """What the fake records for tests to read."""
        self.mule_msg_hook: MessageHook | None = None
        self._hook_wrap: Callable[[MessageHook], MessageHook] | None = None
        self.log_lines: list[str] = []
        self.task_errors: list[tuple[str, BaseException]] = []
        #: messages each mule's loop reported as read (like the plugin's "taken")
        self.taken: dict[int, int] = {}

    def _init_services(self, locks: int, spooler: bool, spooler_ordered: bool,
                       caches: Sequence[CacheSpec | str]) -> None:
        """Signals, timers, file monitors, locks, spooler, RPC, caches: the master's services."""
        self.clock = VirtualClock()
        self.schedule = MasterSchedule(self.clock)
        self.file_monitors = FileMonitors()
        self.signals = FakeSignals(self, self.queues.cond)
        self.locks = FakeLocks(locks)
        self.spooler = FakeSpooler(self, enabled=spooler, ordered=spooler_ordered)
        self.post_fork_hook: Callable[[], object] | None = None
        self.rpc_functions: dict[str, Callable[..., object]] = {}
        self.user_harakiri: dict[ProcessId, int] = {}
        #: ``cache2`` caches (CacheSpec or cache2 option values), see fake/cache.py
        self.caches = FakeCaches((CacheSpec.parse(c) if isinstance(c, str) else c for c in caches), self.clock.time)
        self.caches.log = self._log
        self.controls = MasterControls(self)

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
        from ..layout.uwsgi_args import options_from_ini

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

    def __enter__(self) -> Self:
        activate(self)
        self._active = True
        if self.backlog_dir is not None:
            self.loops.start_all()  # the mules start: they claim and replay the saved offloads
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
        return self.local.process

    @contextlib.contextmanager
    def as_process(self, kind: str, number: int) -> Iterator[FakeUwsgi]:
        previous = vars(self.local).get("process")
        self.local.process = (kind, number)
        try:
            yield self
        finally:
            self.mule_threads.release_held()
            if previous is None:
                vars(self.local).pop("process", None)
            else:
                self.local.process = previous

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
        kind, number = self.local.process
        return number if kind == "mule" else 0

    def worker_id(self) -> int:
        kind, number = self.local.process
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
        data, queue = self._addressed(message, target)
        self.local.bad_target = queue is None
        if queue is None:
            self._log("mule_send_msg(): Bad file descriptor [core/mule.c line 28]")
            return False
        return self._put(queue, data)

    def _addressed(self, message: bytes | str, target: MuleTarget) -> tuple[bytes, MessageQueue | None]:
        """What ``mule_msg`` checks first: the message's bytes and its target's
        queue (None: a bad target); ValueError when there is no mule."""
        data = as_bytes(message, "mule_msg() argument 1")
        if self.mule_count < 1:
            raise ValueError("no mule configured")
        return data, self.queues.for_target(target)

    def send_refused_bad_target(self) -> bool:
        return bool(self.local.bad_target)

    def raw_sender(self, target: MuleTarget) -> Callable[[bytes, MuleTarget], bool]:
        """``mule_msg`` with ``target``'s queue looked up once: the same
        checks, counters, results and log lines. Other targets, messages that
        are not ``bytes``, and a fake whose ``mule_msg`` is replaced (by a
        subclass or on the instance) go through ``mule_msg`` itself."""
        mule_msg = self.mule_msg
        if getattr(mule_msg, "__func__", None) is not FakeUwsgi.mule_msg or self.mule_count < 1:
            return mule_msg
        try:
            queue = self.queues.for_target(target)
        except ValueError:
            return mule_msg
        if queue is None:
            return mule_msg
        return self._queue_sender(queue, target, mule_msg)

    def _queue_sender(
        self, queue: MessageQueue, target: MuleTarget, mule_msg: Callable[[bytes, MuleTarget], bool]
    ) -> Callable[[bytes, MuleTarget], bool]:
        local = self.local
        put_small = self.queues.fast_put(queue)
        put = self._put

        def send_to_queue(message: bytes, to: MuleTarget) -> bool:
            if to is not target or type(message) is not bytes:
                return mule_msg(message, to)
            local.bad_target = False
            return put_small(message) or put(queue, message)  # full or large: counted and logged there

        return send_to_queue

    def farm_msg(self, farm: str, message: bytes | str) -> None:
        """``uwsgi.farm_msg``: returns None always, even for an unknown farm or
        a full queue (the message is then lost, as in uWSGI)."""
        if not isinstance(farm, str):
            raise TypeError(f"farm_msg() argument 1 must be str, not {type(farm).__name__}")
        data = as_bytes(message, "farm_msg() argument 1")
        queue = self.queues.by_farm.get(farm)
        if queue is not None and not self._put(queue, data, log_full=False):
            self._log("write(): Resource temporarily unavailable [plugins/python/uwsgi_pymodule.c]")

    def _put(self, queue: MessageQueue, data: bytes, *, log_full: bool = True) -> bool:
        accepted = self.queues.put(queue, data)
        if not accepted and log_full:
            self._log(
                f"*** MULE MSG QUEUE IS FULL: buffer size {queue.budget} bytes "
                "(you can tune it with --mule-msg-size) ***"
            )
        return accepted

    def send_wait(self, message: bytes, target: MuleTarget, timeout: float) -> bool | None:
        """Wait up to ``timeout`` seconds for room (like the plugin does)."""
        data, queue = self._addressed(message, target)
        if queue is None:
            return False
        threads = self.mule_threads
        return self.queues.put_waiting(queue, data, timeout, stopped=lambda: threads.stopped,
                                       drained=lambda: threads.running() or self.queues.has_waiters())

    # -- raw uwsgi API: receiving; threaded mode (MuleThreads) ---------------------------

    def mule_get_msg(self, signals: bool | None = True, farms: bool | None = True, buffer_size: int = 65536,
                     timeout: int = -1) -> bytes | None:
        """``uwsgi.mule_get_msg`` (see :meth:`MuleThreads.mule_get_msg`)."""
        return self.mule_threads.mule_get_msg(signals, farms, buffer_size, timeout)

    def farm_get_msg(self) -> bytes | None:
        """``uwsgi.farm_get_msg``: blocks (forever when the mule is in no farm)."""
        return self.mule_threads.farm_get_msg()

    def start(self) -> None:
        """Start one thread per mule that runs its program like uWSGI would."""
        self.mule_threads.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mule threads (they leave any blocking receive at once)."""
        self.mule_threads.stop(timeout)

    def join(self, timeout: float = 10.0) -> None:
        """Block until every queue is empty and no mule is handling a message, or raise TimeoutError."""
        self.mule_threads.join(timeout)

    def mule_threads_running(self) -> bool:
        """True in threaded mode (mule threads receive)."""
        return self.mule_threads.running()

    def check_stopped(self) -> None:
        """In a mule thread of a stopped fake: raise :class:`FakeStopped` (the thread ends)."""
        self.mule_threads.check_stopped()

    # -- raw uwsgi API: signals, timers, locks, spooler, RPC, post-fork (the master's services) --

    def register_signal(self, signum: int, target: str, handler: Callable[[int], object]) -> None:
        if not isinstance(target, str):
            raise TypeError(f"register_signal() argument 2 must be str, not {type(target).__name__}")
        self.signals.register(self.process, uint8(signum), target, handler)

    def signal(self, signum: int, remote: str | None = None) -> None:
        if remote is not None:
            raise OSError(f"unable to deliver signal {uint8(signum)} to node {remote} (the fake has no network)")
        self.signals.route(uint8(signum))

    def signal_registered(self, signum: int) -> bool:
        return self.signals.registered(self.process, uint8(signum))

    def signal_wait(self, signum: int | None = None) -> bytes:
        return self.signals.wait(None if signum is None else uint8(signum), self.controls.advance_to_next_event)

    def signal_received(self) -> int:
        return self.signals.received.get(self.process, -1)

    def add_timer(self, signum: int, seconds: int) -> None:
        if not self.schedule.add_timer(uint8(signum), c_int(seconds)):
            self._log("you can register max 64 timers !!!")
            raise ValueError("unable to add timer")

    def add_rb_timer(self, signum: int, seconds: int, iterations: int = 0) -> None:
        if not self.schedule.add_rb_timer(uint8(signum), c_int(seconds), c_int(iterations)):
            self._log("you can register max 64 rb_timers !!!")
            raise ValueError("unable to add rb_timer")

    def add_cron(self, signum: int, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
        fields = [c_int(v) for v in (minute, hour, day, month, weekday)]
        if not self.schedule.add_cron(uint8(signum), *fields):
            self._log("you can register max 64 cron !!!")
            raise ValueError("unable to add cron")
        return True

    def add_file_monitor(self, signum: int, path: str) -> None:
        if not isinstance(path, str):
            raise TypeError(f"add_file_monitor() argument 2 must be str, not {type(path).__name__}")
        if not self.file_monitors.add(uint8(signum), path):
            self._log("uwsgi_add_file_monitor: invalid filename length or more than 64 monitors")
            raise ValueError("unable to add file monitor")

    def lock(self, number: int = 0) -> None:
        self._check_lock_process()
        self.locks.lock(number, self.check_stopped)

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
        self.user_harakiri[self.process] = c_int(seconds)

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
        return result.encode() if isinstance(result, str) else bytes(result)  # type: ignore[call-overload]  # any object: bytes() raises for one it cannot convert

    def now(self) -> float:
        return self.clock.time()

    def as_spooler(self) -> contextlib.AbstractContextManager[FakeUwsgi]:
        """Run a block as the spooler process."""
        return self.as_process("spooler", 1)

    # -- the master's test controls (MasterControls) -----------------------------------------

    def advance(self, seconds: float, *, deliver: bool = True) -> int:
        """See :meth:`MasterControls.advance`: move the virtual clock, fire what is due."""
        return self.controls.advance(seconds, deliver=deliver)

    def deliver_signals(self, *, raise_errors: bool | None = None, timeout: float = 10.0) -> int:
        """See :meth:`MasterControls.deliver_signals`."""
        return self.controls.deliver_signals(raise_errors=raise_errors, timeout=timeout)

    def poll_file_monitors(self, *, deliver: bool = True) -> int:
        """Raise the signal of every monitored path that changed on disk."""
        return self.controls.poll_file_monitors(deliver=deliver)

    def fire_file_monitor(self, path: str | Path, *, deliver: bool = True) -> int:
        """Raise the signal of the monitors of ``path`` as if it changed."""
        return self.controls.fire_file_monitor(path, deliver=deliver)

    def run_spooler(self, *, raise_errors: bool | None = None) -> int:
        """See :meth:`MasterControls.run_spooler`: one spooler scan."""
        return self.controls.run_spooler(raise_errors=raise_errors)

    def simulate_fork(self) -> int:
        """See :meth:`MasterControls.simulate_fork`: ``post_fork_hook`` in every process."""
        return self.controls.simulate_fork()

    # -- raw uwsgi API: caches (FakeCaches) ----------------------------------------------

    def cache_set(self, key: str | bytes, value: bytes, expires: int = 0, cache: str | None = None) -> bool | None:
        return self.caches.set(as_bytes(key, "key"), as_bytes(value, "value"), expires, cache, update=False)

    def cache_update(self, key: str | bytes, value: bytes, expires: int = 0, cache: str | None = None) -> bool | None:
        return self.caches.set(as_bytes(key, "key"), as_bytes(value, "value"), expires, cache, update=True)

    def cache_get(self, key: str | bytes, cache: str | None = None) -> bytes | None:
        return self.caches.get(as_bytes(key, "key"), cache)

    def cache_exists(self, key: str | bytes, cache: str | None = None) -> bool | None:
        return True if self.caches.get(as_bytes(key, "key"), cache) is not None else None

    def cache_del(self, key: str | bytes, cache: str | None = None) -> bool | None:
        return self.caches.delete(as_bytes(key, "key"), cache)

    def cache_keys(self, cache: str | None = None) -> list[bytes]:
        return self.caches.keys(cache)

    def cache_clear(self, cache: str | None = None) -> bool | None:
        return self.caches.clear(cache)

    # -- hook ----------------------------------------------------------------------------

    def get_msg_hook(self) -> MessageHook | None:
        return self.mule_msg_hook

    def set_msg_hook(self, hook: MessageHook | None) -> None:
        if hook is not None and self._hook_wrap is not None:
            hook = self._hook_wrap(hook)
        self.mule_msg_hook = hook

    def guard_msg_hook(self, wrap: Callable[[MessageHook], MessageHook]) -> None:
        self._hook_wrap = wrap

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
        """Simulate a graceful reload (``touch-reload``, ``SIGHUP``...): each
        programmed mule's loop saves what is queued for it and what it holds,
        and the next loops replay it, as on real uWSGI; returns how many."""
        threaded = self.mule_threads_running()
        if threaded:
            self.stop()
        saved = self.loops.reload()
        if threaded:
            self.start()
        return saved

    def shutdown(self) -> int:
        """Simulate a stop (``SIGINT``...): each programmed mule's loop saves
        what is queued for it and what it holds to ``backlog_dir`` (a new
        ``FakeUwsgi(backlog_dir=...)`` replays them when entered), or logs them
        at error level as discarded; returns how many."""
        if self.mule_threads_running():
            self.stop()
        return self.loops.shutdown()

    def run_pending(self, *, raise_errors: bool | None = None, limit: int | None = None) -> int:
        """See :meth:`FakeStepMode.run_pending`."""
        return self.stepper.run_pending(raise_errors=raise_errors, limit=limit)

    def steppable_mules(self) -> list[int]:
        """The mules step mode runs."""
        return self.stepper.steppable_mules()

    def call_hook(self, message: bytes) -> object:
        """What uWSGI's loop of a signal-only mule does with a message: the
        ``mule_msg_hook``, else a log line."""
        hook = self.mule_msg_hook
        if hook is None:
            self._log(f"*** mule {self.mule_id()} received a {len(message)} bytes message ***")
            return False
        try:
            return hook(message)
        except Exception as exc:  # noqa: BLE001 - uWSGI prints any hook error's traceback and goes on
            self.report_task_error(exc, "mule_msg_hook")
            return False

    def all_queues(self) -> list[MessageQueue]:
        return self.queues.all()

    # -- introspection -------------------------------------------------------------------

    def pending(self) -> int:
        """Messages waiting in all queues."""
        return self.queues.pending()

    def queue(self, target: MuleTarget) -> MessageQueue:
        """The queue a ``mule_msg`` target writes to (for assertions)."""
        if isinstance(target, str):
            target = target.encode()
        queue = self.queues.for_target(target)
        if queue is None:
            raise ValueError(f"no queue for target {target!r}")
        return queue

    def stats(self) -> BackendStats:
        owner = self.queues
        queues = {"shared": owner.shared.counters()}
        queues.update({f"mule{i}": q.counters() for i, q in owner.by_mule.items()})
        queues.update({f"farm:{n}": q.counters() for n, q in owner.by_farm.items()})
        return BackendStats(queues)

    def counts_taken(self) -> bool:
        return True

    def note_taken(self, mule_id: int, count: int = 1) -> None:
        with self._cond:
            self.taken[mule_id] = self.taken.get(mule_id, 0) + count

    def wall_time(self) -> float:
        """The clock of due times: the virtual clock (``fake.advance()``); in
        threaded mode real seconds pass on it too."""
        if self.threaded:
            return time.time() + self.clock.elapsed
        return self.clock.time()

    @property
    def dead_letters(self) -> list[DeadTask]:
        """The dead tasks kept (tasks given up after their last attempt), oldest
        first: a view over the mule side's dead store, their one owner."""
        return dispatcher_for(self).deferral.dead_store().tasks()

    def report_task_error(self, exc: BaseException, description: str) -> None:
        with self._cond:
            self.task_errors.append((description, exc))
        super().report_task_error(exc, description)

    @contextlib.contextmanager
    def reraising(self, raise_errors: bool | None) -> Iterator[None]:
        """Re-raise, after the block, the first task error recorded in it when
        ``raise_errors`` (None: the fake's ``raise_task_errors``)."""
        before = len(self.task_errors)
        yield
        if (self.raise_task_errors if raise_errors is None else raise_errors) and len(self.task_errors) > before:
            raise self.task_errors[before][1]

    def log(self, message: str) -> None:
        self._log(message)

    def _log(self, line: str) -> None:
        with self._cond:
            self.log_lines.append(line)
        logger.warning("%s", line)

__all__ = ["FakeStopped", "FakeUwsgi", "FarmSpec", "MuleSpec", "ProcessId"]
