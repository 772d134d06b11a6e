"""The interface every backend implements.

The typed layer (``uwsgi_mules.runtime``) only talks to a :class:`Backend`.
The raw methods keep the names, arguments and *quirks* of the ``uwsgi``
module (False on a full queue, ``b""`` on timeout, ValueError cases), so a
fake and the real server can be checked against one contract. Backends never
import the typed layer.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..envelope import Signer
from ..layout.topology import Topology

MuleTarget = int | bytes | str | None
MessageHook = Callable[[bytes], object]

logger = logging.getLogger("uwsgi_mules")


@dataclass
class QueueCounters:
    """Counters of one queue, as far as a backend can see them."""

    sent: int = 0
    refused: int = 0
    received: int = 0
    depth_bytes: int | None = None
    depth_messages: int | None = None


@dataclass
class BackendStats:
    """Per-queue counters: keys are ``"shared"``, ``"mule1"``..., ``"farm:NAME"``."""

    queues: dict[str, QueueCounters] = field(default_factory=dict)


class SimulatedCrash(BaseException):
    """Raised inside a fake mule to simulate its process dying mid-task
    (``SIGKILL``, out of memory, harakiri): the mule side never catches it."""


class Backend(ABC):
    """A uWSGI process as seen by the typed layer."""

    #: short name used in logs and reprs ("uwsgi", "fake")
    name = "backend"
    #: True for a real uWSGI process, False for the fake (and test doubles)
    is_real: bool = False

    # -- identity ---------------------------------------------------------

    @abstractmethod
    def mule_id(self) -> int:
        """Like ``uwsgi.mule_id()``: 0 outside a mule."""

    @abstractmethod
    def worker_id(self) -> int:
        """Like ``uwsgi.worker_id()``: 0 in the master and in mules."""

    @abstractmethod
    def in_farm(self, name: str | None = None) -> bool | None:
        """Like ``uwsgi.in_farm(name)``: True or None."""

    # -- raw messaging (real uWSGI semantics) -------------------------------

    @abstractmethod
    def mule_msg(self, message: bytes | str, target: MuleTarget = None) -> bool:
        """Like ``uwsgi.mule_msg``: True if queued, False if refused."""

    @abstractmethod
    def farm_msg(self, farm: str, message: bytes | str) -> None:
        """Like ``uwsgi.farm_msg``: always None."""

    @abstractmethod
    def mule_get_msg(
        self,
        signals: bool = True,
        farms: bool = True,
        buffer_size: int = 65536,
        timeout: int = -1,
    ) -> bytes | None:
        """Like ``uwsgi.mule_get_msg``: bytes, ``b""`` on timeout, None after a
        handled signal."""

    @abstractmethod
    def farm_get_msg(self) -> bytes | None:
        """Like ``uwsgi.farm_get_msg``."""

    # -- the message hook of signal-only mules --------------------------------

    @abstractmethod
    def get_msg_hook(self) -> MessageHook | None:
        """The current ``uwsgi.mule_msg_hook`` of this process."""

    @abstractmethod
    def set_msg_hook(self, hook: MessageHook | None) -> None:
        """Set ``uwsgi.mule_msg_hook`` for this process."""

    def guard_msg_hook(self, wrap: Callable[[MessageHook], MessageHook]) -> None:  # noqa: B027 - optional, a no-op by default
        """From now on, pass any hook the application sets through ``wrap``
        (so a hook set late cannot cut offloads off)."""

    # -- layout --------------------------------------------------------------

    @abstractmethod
    def topology(self) -> Topology | None:
        """The mule/farm layout, or None when it cannot be known."""

    # -- the instance: envelope key, runtime files, lifecycle facts ---------------------

    @abstractmethod
    def signer(self) -> Signer:
        """Signs and verifies envelopes with this instance's key."""

    def runtime_dir(self) -> Path | None:
        """This instance's private directory (key, in-flight records,
        reload backlog), or None when the backend keeps them in memory."""
        return None

    def getenv(self, name: str) -> str | None:
        """An environment variable of the instance (the master's, as uWSGI set it)."""
        return os.environ.get(name)

    def mule_harakiri(self) -> int:
        """Seconds a mule task may run before the master kills it (0: no limit)."""
        return 0

    def reload_mercy(self) -> int:
        """Seconds the master waits for a mule told to stop (``mule-reload-mercy``)."""
        return 60

    def worker_states(self) -> list[tuple[int, bool]] | None:
        """``(pid, busy)`` of each worker slot (pid 0: no process), or None when unknown."""
        return None

    def provable_mule_count(self) -> int | None:
        """How many mules this instance certainly has: the layout's count, or
        where it is unknown what the running instance proves (None: nothing)."""
        topology = self.topology()
        return topology.mule_count if topology is not None else None

    def send_refused_bad_target(self) -> bool:
        """Right after a raw send to a mule id returned False: whether it
        failed because that mule does not exist ("Bad file descriptor") rather
        than because its queue was full. False when the backend cannot tell."""
        return False

    # -- optional capabilities (the plugin, the fake) -------------------------------

    @property
    def plugin(self) -> Any:
        """The uwsgi-mules C plugin's bridge where it is loaded (real uWSGI), else None."""
        return None

    def receiver(self) -> Callable[[bool, bool, int, int], bytes | None]:
        """The fastest ``mule_get_msg(signals, farms, buffer_size, timeout)``
        (the C function itself on real uWSGI), for the mule's loop."""
        return self.mule_get_msg

    def counts_taken(self) -> bool:
        """Whether :meth:`note_taken` counts anything (the plugin, the fake):
        without it the mule's loop skips the call."""
        return False

    def raw_sender(self, target: MuleTarget) -> Callable[[bytes, MuleTarget], bool]:
        """The fastest ``send(message, target) -> bool`` for ``target`` (True:
        queued, False: full; ValueError like ``mule_msg``)."""
        return self.mule_msg

    def send_wait(self, message: bytes, target: MuleTarget, timeout: float) -> bool | None:
        """Send, waiting up to ``timeout`` seconds for room.

        Returns True/False, or None when the backend cannot wait natively
        (the typed layer then retries with backoff).
        """
        return None

    def stats(self) -> BackendStats | None:
        """Queue depths and counters, or None when unavailable."""
        return None

    def note_taken(self, mule_id: int, count: int = 1) -> None:  # noqa: B027 - optional, a no-op by default
        """Called by the mule loop with how many messages it read (counters)."""

    def wall_time(self) -> float:
        """Seconds since the epoch, the clock of due times (``offload_in``,
        retries' backoff); the fake's virtual clock on the fake."""
        return time.time()

    def report_task_error(self, exc: BaseException, description: str) -> None:
        """Called by the mule side when an offloaded task raised."""
        logger.error("offloaded task %s failed", description, exc_info=(type(exc), exc, exc.__traceback__))

    def log(self, message: str) -> None:
        """Write a line to the server log."""
        logger.warning(message)

    # -- signals, timers, locks, spooler --------------------------------------
    # Raw ``uwsgi`` functions with their 2.0 semantics (signal numbers wrap
    # mod 256, ValueError on refusal). Both backends implement them.

    def _missing(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"the {self.name!r} backend does not support {what}")

    def register_signal(self, signum: int, target: str, handler: Callable[[int], object]) -> None:
        """``uwsgi.register_signal``: ValueError in a mule, the spooler, or on
        re-registration in the master."""
        raise self._missing("register_signal")

    def signal(self, signum: int) -> None:
        """``uwsgi.signal``: ask the master to route ``signum``."""
        raise self._missing("signal")

    def signal_registered(self, signum: int) -> bool:
        """``uwsgi.signal_registered`` (in this process's table)."""
        raise self._missing("signal_registered")

    def signal_wait(self, signum: int | None = None) -> object:
        """``uwsgi.signal_wait``: block until a signal for this process arrives."""
        raise self._missing("signal_wait")

    def signal_received(self) -> int:
        """``uwsgi.signal_received``: the number the last wait got."""
        raise self._missing("signal_received")

    def add_timer(self, signum: int, seconds: int) -> None:
        raise self._missing("add_timer")

    def add_rb_timer(self, signum: int, seconds: int, iterations: int = 0) -> None:
        raise self._missing("add_rb_timer")

    def add_cron(self, signum: int, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
        raise self._missing("add_cron")

    def add_file_monitor(self, signum: int, path: str) -> None:
        raise self._missing("add_file_monitor")

    def lock(self, number: int = 0) -> None:
        raise self._missing("lock")

    def unlock(self, number: int = 0) -> None:
        raise self._missing("unlock")

    def is_locked(self, number: int = 0) -> bool:
        raise self._missing("is_locked")

    def lock_count(self) -> int | None:
        """The ``locks`` option (extra locks 1..N), or None when unknown."""
        return None

    def i_am_the_spooler(self) -> bool:
        return False

    def has_spooler(self) -> bool | None:
        """Whether a spooler is configured (None: unknown)."""
        return None

    def spooler_ordered(self) -> bool | None:
        """Whether ``spooler-ordered`` is set (priorities only work then)."""
        return None

    def spool(self, *args: object, **kwargs: object) -> bytes:
        """``uwsgi.spool``: bytes keys and values; returns the task path."""
        raise self._missing("spool")

    def spool_key_dir(self) -> Path | None:
        """The spool directory whose data key signs spooled arguments (the
        first ``spooler``); None when tasks are kept in memory (the fake)."""
        return None

    def get_spooler(self) -> Callable[[dict[bytes, bytes]], object] | None:
        """The ``uwsgi.spooler`` callable of this process."""
        raise self._missing("the spooler")

    def set_spooler(self, handler: Callable[[dict[bytes, bytes]], object] | None) -> None:
        raise self._missing("the spooler")

    def get_post_fork_hook(self) -> Callable[[], object] | None:
        raise self._missing("post_fork_hook")

    def set_post_fork_hook(self, hook: Callable[[], object] | None) -> None:
        raise self._missing("post_fork_hook")

    def set_user_harakiri(self, seconds: int) -> None:
        raise self._missing("set_user_harakiri")

    def register_rpc(self, name: str, func: Callable[..., object], argc: int = 0) -> bool:
        raise self._missing("register_rpc")

    def rpc_call(self, name: str, *args: bytes) -> bytes | None:
        """``uwsgi.call``: run a registered RPC function locally."""
        raise self._missing("rpc")

    # -- caches (uWSGI's caching framework, ``cache2``) ------------------------
    # Raw ``uwsgi.cache_*`` semantics: True on success, None when refused.

    def cache_set(self, key: str | bytes, value: bytes, expires: int = 0, cache: str | None = None) -> bool | None:
        """``uwsgi.cache_set``: None if the key exists, the value is too large or the cache is full."""
        raise self._missing("caches")

    def cache_update(self, key: str | bytes, value: bytes, expires: int = 0, cache: str | None = None) -> bool | None:
        """``uwsgi.cache_update``: set or overwrite."""
        raise self._missing("caches")

    def cache_get(self, key: str | bytes, cache: str | None = None) -> bytes | None:
        raise self._missing("caches")

    def cache_exists(self, key: str | bytes, cache: str | None = None) -> bool | None:
        raise self._missing("caches")

    def cache_del(self, key: str | bytes, cache: str | None = None) -> bool | None:
        raise self._missing("caches")

    def cache_keys(self, cache: str | None = None) -> list[bytes]:
        """``uwsgi.cache_keys``: ValueError when the cache does not exist."""
        raise self._missing("caches")

    def now(self) -> float:
        """``time.time()`` of this backend (the fake's is virtual)."""
        import time

        return time.time()
