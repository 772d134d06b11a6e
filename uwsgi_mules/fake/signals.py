"""uWSGI signals in the fake: the signal tables, the routing and the pipes.

Modelled on ``core/signal.c`` of uWSGI 2.0:

* every worker has its own copy of the 256-entry table; the master's table
  (copied to every worker when the master registers) is also the one mules
  and the spooler use. Mules and the spooler cannot register; the master
  cannot register a number twice.
* ``uwsgi.signal(n)`` goes to the master, which routes it with *its* table:
  ``worker`` (first available worker), ``workers``, ``workerN``,
  ``active-workers``, ``mule`` (first available mule), ``mules``,
  ``muleN``, ``farm_NAME`` / ``farmN`` (one mule of the farm), ``spooler``.
  A number nobody registered in the master goes to the first available
  worker (for ``signal_wait``).
* each process reads its own pipe and a shared one (workers' pool, mules'
  pool); only signal-only mules read farm pipes (``mule_get_msg`` and
  ``signal_wait`` never do).
* a process runs the handler of *its* table; an entry registered by
  another worker is refused ("registered this signal in worker N memory
  area").
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import FakeUwsgi, ProcessId

#: (kind, number or farm name): one signal pipe
PipeKey = tuple[str, int | str]
WORKER_POOL: PipeKey = ("workers-pool", 0)
MULE_POOL: PipeKey = ("mules-pool", 0)
SPOOLER_PIPE: PipeKey = ("spooler", 0)


@dataclass
class SignalEntry:
    target: str
    handler: Callable[[int], object]
    wid: int


def _atoi(text: str) -> int:
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


class FakeSignals:
    """Signal tables, routing and pipes of one :class:`FakeUwsgi`."""

    def __init__(self, fake: FakeUwsgi, cond: threading.Condition) -> None:
        self._fake = fake
        #: the fake's queue condition: mule threads wait on it for messages and signals alike
        self._cond = cond
        self.tables: dict[int, dict[int, SignalEntry]] = {0: {}}
        self.pipes: dict[PipeKey, deque[int]] = {}
        self.received: dict[tuple[Any, ...], int] = {}
        self.handled: list[tuple[ProcessId, int]] = []
        self.wait_timeout = 10.0
        #: round robin over the readers of each pipe, and the readers it was made for
        self._rr: dict[PipeKey, Iterator[ProcessId]] = {}
        self._rr_readers: dict[PipeKey, list[ProcessId]] = {}
        self._lock = threading.RLock()

    # -- tables -------------------------------------------------------------

    @staticmethod
    def _table_index(process: ProcessId) -> int:
        kind, number = process
        return number if kind == "worker" else 0

    def register(self, process: ProcessId, signum: int, target: str, handler: Callable[[int], object]) -> None:
        kind, _ = process
        if kind not in ("master", "worker"):
            self._fake.log("only the master and the workers can register signal handlers")
            raise ValueError("unable to register signal")
        if len(target.encode()) > 63:
            raise ValueError("unable to register signal")
        index = self._table_index(process)
        with self._lock:
            table = self.tables.setdefault(index, {})
            if index == 0 and signum in table:
                self._fake.log("[uwsgi-signal] you cannot re-register a signal as the master !!!")
                raise ValueError("unable to register signal")
            table[signum] = SignalEntry(target, handler, index)
            if index == 0:  # the master's table is copied to every worker
                for wid in range(1, self._fake.workers + 1):
                    self.tables[wid] = dict(table)
        shown = target or "default, any worker"
        self._fake.log(f"[uwsgi-signal] signum {signum} registered (wid: {index} modifier1: 0 target: {shown})")

    def registered(self, process: ProcessId, signum: int) -> bool:
        return signum in self.tables.get(self._table_index(process), {})

    # -- routing (the master) -------------------------------------------------

    def route(self, signum: int) -> None:
        """``uwsgi_route_signal``: put ``signum`` on the pipe(s) its master
        table entry names."""
        fake = self._fake
        entry = self.tables[0].get(signum)
        receiver = entry.target if entry is not None else ""
        keys: list[PipeKey] = []
        if receiver in ("", "worker", "worker0"):
            keys = [WORKER_POOL]
        elif receiver in ("workers", "active-workers"):
            keys = [("worker", i) for i in range(1, fake.workers + 1)]
        elif receiver.startswith("worker"):
            number = _atoi(receiver[6:])
            if number > fake.workers or number < 0:
                fake.log(f"invalid signal target: {receiver}")
                fake.log(f"could not deliver signal {signum} to worker {number}")
            else:
                keys = [("worker", number)]
        elif receiver == "subscribed":
            keys = []
        elif receiver == "spooler":
            if fake.spooler.enabled:
                keys = [SPOOLER_PIPE]
            else:
                fake.log(f"could not deliver signal {signum} to the spooler")
        elif receiver == "mules":
            keys = [("mule", i) for i in range(1, fake.mule_count + 1)]
        elif receiver.startswith("mule"):
            number = _atoi(receiver[4:])
            if number > fake.mule_count:
                fake.log(f"invalid signal target: {receiver}")
            elif number <= 0:
                keys = [MULE_POOL] if fake.mule_count else []
            else:
                keys = [("mule", number)]
        elif receiver.startswith("farm_"):
            name = receiver[5:]
            if fake.topology().farm(name) is None:
                fake.log(f"unknown farm: {name}")
            else:
                keys = [("farm", name)]
        elif receiver.startswith("farm"):
            number = _atoi(receiver[4:])
            farms = fake.topology().farms
            if number <= 0 or number > len(farms):
                fake.log(f"invalid signal target: {receiver}")
            else:
                keys = [("farm", farms[number - 1].name)]
        else:
            fake.log(f"^^^ UNSUPPORTED SIGNAL TARGET: {receiver} ^^^")
        with self._cond:
            for key in keys:
                self.pipes.setdefault(key, deque()).append(signum)
            self._cond.notify_all()

    # -- reading ---------------------------------------------------------------

    def pipes_of(self, process: ProcessId, *, farms: bool) -> list[PipeKey]:
        kind, number = process
        if kind == "worker":
            return [("worker", number), WORKER_POOL]
        if kind == "mule":
            keys: list[PipeKey] = [("mule", number), MULE_POOL]
            if farms:
                keys += [("farm", name) for name in self._fake.topology().farms_of(number)]
            return keys
        if kind == "spooler":
            return [SPOOLER_PIPE]
        return []

    def pop(self, keys: list[PipeKey]) -> int | None:
        """Take the next signal from the first non-empty pipe (caller holds the
        fake's condition)."""
        for key in keys:
            pipe = self.pipes.get(key)
            if pipe:
                return pipe.popleft()
        return None

    def source(self, process: ProcessId) -> int | None:
        """``FakeUwsgi.signal_source``: a mule's pending signal. Only a
        signal-only mule's loop reads its farms' signal pipes."""
        kind, number = process
        farms = False
        if kind == "mule":
            farms = self._fake.topology().mules[number - 1].kind == "signal"
        return self.pop(self.pipes_of(process, farms=farms))

    def pending(self) -> int:
        return sum(len(p) for p in self.pipes.values())

    # -- running handlers --------------------------------------------------------

    def dispatch(self, signum: int) -> int:
        """``uwsgi_signal_handler`` in the calling process: 0 if a handler ran."""
        fake = self._fake
        process = fake.process
        kind, number = process
        entry = self.tables.get(self._table_index(process), {}).get(signum)
        if entry is None:
            fake.log(f"error managing signal {signum} on {kind} {number}")
            return -1
        mywid = number if kind == "worker" else 0
        if entry.wid != 0 and entry.wid != mywid:
            fake.log(
                f"[uwsgi-signal] you have registered this signal in worker {entry.wid} memory area, "
                "only that process will be able to run it"
            )
            return -1
        with self._lock:
            self.handled.append((process, signum))
        try:
            entry.handler(signum)
        except Exception as exc:  # noqa: BLE001 - uWSGI prints any handler error's traceback and goes on
            fake.report_task_error(exc, f"signal {signum} handler on {kind} {number}")
            return -1
        return 0

    def deliver(self, *, include_mules: bool) -> int:
        """Step mode: run every pending signal in the process that reads it.

        Pools ("first available") go round-robin over the processes that read
        them. Mule pipes are left alone when ``include_mules`` is False (the
        mule threads read them).
        """
        fake = self._fake
        ran = 0
        while True:
            job = self._next_job(include_mules)
            if job is None:
                return ran
            process, signum = job
            with fake.as_process(*process):
                self.dispatch(signum)
            ran += 1

    def _next_job(self, include_mules: bool) -> tuple[ProcessId, int] | None:
        with self._cond:
            for key, pipe in self.pipes.items():
                if not pipe:
                    continue
                readers = self._readers(key, include_mules)
                if not readers:
                    continue
                cycle = self._rr.get(key)
                if cycle is None or self._rr_readers.get(key) != readers:
                    cycle = self._rr[key] = itertools.cycle(readers)
                    self._rr_readers[key] = readers
                return (next(cycle), pipe.popleft())
        return None

    def _readers(self, key: PipeKey, include_mules: bool) -> list[ProcessId]:
        fake = self._fake
        kind, value = key
        if kind == "worker":
            return [("worker", int(value))]
        if key == WORKER_POOL:
            return [("worker", i) for i in range(1, fake.workers + 1)]
        if key == SPOOLER_PIPE:
            return [("spooler", 1)] if fake.spooler.enabled else []
        if not include_mules:
            return []
        live = fake.steppable_mules()
        if kind == "mule":
            return [("mule", int(value))] if value in live else []
        if key == MULE_POOL:
            return [("mule", m) for m in live]
        if kind == "farm":
            farm = fake.topology().farm(str(value))
            members = farm.mules if farm is not None else ()
            return [("mule", m) for m in members if m in live and fake.topology().mules[m - 1].kind == "signal"]
        return []

    # -- signal_wait ----------------------------------------------------------------

    def wait(self, signum: int | None, advance: Callable[[], bool]) -> bytes:
        """``uwsgi.signal_wait([signum])`` in the calling process.

        In step mode (no mule threads) time jumps to the next timer when no
        signal is pending; otherwise it waits up to :attr:`wait_timeout` real
        seconds and raises TimeoutError (real uWSGI would block forever).
        """
        fake = self._fake
        process = fake.process
        keys = self.pipes_of(process, farms=False)
        if not keys:
            raise SystemError("you can call uwsgi api function only from the main callable")
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self._cond:
                while True:
                    fake.check_stopped()
                    got = self.pop(keys)
                    if got is not None:
                        break
                    if not fake.mule_threads_running() and advance():
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(
                            f"fake signal_wait({'' if signum is None else signum}): no signal for "
                            f"{process[0]} {process[1]} in {self.wait_timeout}s (real uWSGI would block forever)"
                        )
                    self._cond.wait(min(remaining, 0.05))
            self.dispatch(got)
            if signum is None or got == signum:
                self.received[process] = got
                return b""
