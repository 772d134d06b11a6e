"""Python side of the uwsgi-mules C plugin (``plugin/mules_plugin.c``).

The plugin is a generic uWSGI plugin loaded with ``--plugin
path/to/mules_plugin.so``. uWSGI ``dlopen()``s plugins with ``RTLD_GLOBAL``,
so its exported ``mules_plugin_*`` functions are reachable through
``ctypes.CDLL(None)`` in the master, the workers and the mules (the process
image is inherited across ``fork``). :func:`load_plugin` finds them and
returns a :class:`PluginBridge`, or None when the plugin is not loaded
(plain uWSGI, pyuwsgi, tests without uWSGI). Nothing happens at import time.

Every call goes through ``ctypes.CDLL``, which releases the GIL for the
duration of the C call; the C side never touches Python state, so a
:meth:`PluginBridge.send_wait` that waits does not block other threads.

Counters live in shared memory created by the master, so every process sees
the same numbers. ``sent``/``refused`` count only sends made through the
plugin (a raw ``uwsgi.mule_msg`` is invisible to it); ``received`` counts
what callers report with :meth:`PluginBridge.count_received` (uWSGI core
reads the queues itself and tells nobody). Depths come from the kernel and
are exact for every message, whoever sent it.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass

from ..layout.topology import DEFAULT_RECV_SIZE, FarmSpec, MuleSpec, Topology
from .base import BackendStats, MuleTarget, QueueCounters

logger = logging.getLogger("uwsgi_mules")

#: ABI version this bridge speaks (``mules_plugin_abi_version()``)
ABI_VERSION = 2

#: file name produced by ``uwsgi --build-plugin plugin/``
PLUGIN_FILENAME = "mules_plugin.so"

# queue kinds of the C API
KIND_SHARED = 0
KIND_MULE = 1
KIND_FARM = 2

# results of mules_plugin_send_wait() besides 1 (sent) and 0 (timed out)
_ERR_NOT_READY = -1
_ERR_TARGET = -2
_ERR_TOO_BIG = -3
_ERR_IO = -4


class _QueueInfo(ctypes.Structure):
    """Mirror of ``struct mules_plugin_queue_info``."""

    _fields_ = [
        ("sent", ctypes.c_int64),
        ("refused", ctypes.c_int64),
        ("received", ctypes.c_int64),
        ("taken", ctypes.c_int64),
        ("depth_bytes", ctypes.c_int64),
        ("depth_messages", ctypes.c_int64),
        ("mem_used", ctypes.c_int64),
        ("mem_limit", ctypes.c_int64),
    ]


@dataclass(frozen=True)
class QueueInfo:
    """Everything the plugin knows about one queue at one instant.

    ``depth_bytes``: payload bytes waiting (``FIONREAD`` on the reader end).
    ``depth_messages``: messages waiting, counted by peeking; exact while
    nobody reads the queue, may miss messages consumed during the count.
    ``mem_used`` / ``mem_limit``: kernel memory the waiting messages hold
    (``SIOCOUTQ``) and the queue's budget (``SO_SNDBUF``); a send is refused
    when ``mem_used`` plus the new message's cost exceeds ``mem_limit``.
    ``taken`` is only meaningful for a mule: messages it reported reading
    from any of its queues. None means "unknown".
    """

    key: str
    sent: int
    refused: int
    received: int
    taken: int
    depth_bytes: int | None
    depth_messages: int | None
    mem_used: int | None
    mem_limit: int | None

    def counters(self) -> QueueCounters:
        """The backend-neutral view of this queue."""
        return QueueCounters(
            sent=self.sent,
            refused=self.refused,
            received=self.received,
            depth_bytes=self.depth_bytes,
            depth_messages=self.depth_messages,
        )


def _unknown(value: int) -> int | None:
    return None if value < 0 else int(value)


class PluginBridge:
    """Typed access to a loaded ``mules_plugin.so``. Thread-safe; usable in
    any uWSGI process (master, workers, mules)."""

    def __init__(self, lib: ctypes.CDLL, path: str | None = None) -> None:
        self._lib = lib
        #: where the plugin was found (None: through the global namespace)
        self.path = path
        self._declare()
        self._farm_indexes: dict[bytes, int] = {}  # the layout is fixed once ready

    def _declare(self) -> None:
        lib = self._lib
        c_int, c_char_p, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t
        signatures: dict[str, tuple[list[object], object]] = {
            "mules_plugin_abi_version": ([], c_int),
            "mules_plugin_ready": ([], c_int),
            "mules_plugin_mule_count": ([], c_int),
            "mules_plugin_farm_count": ([], c_int),
            "mules_plugin_msg_size": ([], c_int),
            "mules_plugin_socket_buffer": ([], c_int),
            "mules_plugin_mule_program": ([c_int, c_char_p, c_int], c_int),
            "mules_plugin_farm_name": ([c_int, c_char_p, c_int], c_int),
            "mules_plugin_farm_index": ([c_char_p], c_int),
            "mules_plugin_farm_mules": ([c_int, ctypes.POINTER(c_int), c_int], c_int),
            "mules_plugin_send_wait": ([c_int, c_int, c_char_p, c_size_t, ctypes.c_double], c_int),
            "mules_plugin_queue_info": ([c_int, c_int, ctypes.POINTER(_QueueInfo)], c_int),
            "mules_plugin_count_received": ([c_int, c_int], c_int),
            "mules_plugin_count_taken": ([c_int], c_int),
            "mules_plugin_count_taken_n": ([c_int, c_int], c_int),
            "mules_plugin_writer_fd": ([c_int, c_int], c_int),
            "mules_plugin_count_sent_n": ([c_int, c_int, c_int], c_int),
        }
        for name, (argtypes, restype) in signatures.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = restype
        self._send = lib.mules_plugin_send_wait

    # -- state ------------------------------------------------------------------

    @property
    def abi_version(self) -> int:
        return int(self._lib.mules_plugin_abi_version())

    def ready(self) -> bool:
        """True once the master has set the plugin up (before any fork)."""
        return bool(self._lib.mules_plugin_ready())

    # -- layout -----------------------------------------------------------------

    @property
    def mule_count(self) -> int:
        return int(self._lib.mules_plugin_mule_count())

    def farm_names(self) -> list[str]:
        """Farm names in ``--farm`` order."""
        names = []
        buf = ctypes.create_string_buffer(512)
        for index in range(1, int(self._lib.mules_plugin_farm_count()) + 1):
            if self._lib.mules_plugin_farm_name(index, buf, len(buf)) >= 0:
                names.append(buf.value.decode(errors="surrogateescape"))
        return names

    def farm_members(self, index: int) -> tuple[int, ...]:
        """Mule ids of farm ``index`` (1-based), in ``--farm`` order."""
        ids = (ctypes.c_int * 256)()
        count = int(self._lib.mules_plugin_farm_mules(index, ids, len(ids)))
        if count > len(ids):
            ids = (ctypes.c_int * count)()
            count = int(self._lib.mules_plugin_farm_mules(index, ids, count))
        return tuple(ids[:count]) if count > 0 else ()

    def mule_program(self, mule_id: int) -> str | None:
        """The ``--mule`` value of mule ``mule_id`` (None: signal-only)."""
        buf = ctypes.create_string_buffer(4096)
        length = int(self._lib.mules_plugin_mule_program(mule_id, buf, len(buf)))
        if length <= 0:
            return None
        return buf.value.decode(errors="surrogateescape")

    def socket_buffer(self) -> int | None:
        """``SO_SNDBUF`` of the queues as the kernel set it (None without mules)."""
        return _unknown(int(self._lib.mules_plugin_socket_buffer()))

    def topology(self) -> Topology:
        """The exact layout of this instance, read from uWSGI's own tables.

        ``recv_size`` is not a uWSGI setting: it is taken from the rendered
        config's ``UWSGIMULES_TOPOLOGY`` when present, else the default.
        """
        recv_size = DEFAULT_RECV_SIZE
        try:
            from ..layout.topology import TOPOLOGY_ENV
            from .process_env import process_getenv

            value = process_getenv(TOPOLOGY_ENV)
            if value:
                recv_size = Topology.from_env_value(value).recv_size
        except (OSError, ValueError) as exc:  # the env layout is only a hint for recv_size here
            logger.debug("uwsgi-mules plugin: %s not read (%s); recv_size %d", TOPOLOGY_ENV, exc, recv_size)
        mules = tuple(MuleSpec(self.mule_program(i)) for i in range(1, self.mule_count + 1))
        farms = tuple(
            FarmSpec(name, self.farm_members(index)) for index, name in enumerate(self.farm_names(), start=1)
        )
        msg_size = int(self._lib.mules_plugin_msg_size())
        topology = Topology(mules, farms, msg_size or None, recv_size, source="mules_plugin")
        topology.validate()
        return topology

    # -- targets ------------------------------------------------------------------

    def _resolve(self, target: MuleTarget, *, strict: bool) -> tuple[int, int]:
        """``(kind, id)`` for a ``uwsgi.mule_msg``-style target.

        None/0: shared queue; int: that mule (not range-checked, like uWSGI);
        bytes: a farm (ValueError if unknown). ``str`` farm names raise
        ValueError when ``strict`` (uWSGI's ``mule_msg`` does on Python 3).
        """
        if target is None:
            return KIND_SHARED, 0
        if isinstance(target, str):
            if strict:
                raise ValueError("invalid mule")
            target = target.encode()
        if isinstance(target, bytes):
            index = self._farm_indexes.get(target)
            if index is None:
                index = int(self._lib.mules_plugin_farm_index(target))
                if index:
                    self._farm_indexes[target] = index
            if index == 0:
                raise ValueError("unknown farm")
            return KIND_FARM, index
        if isinstance(target, int):
            return (KIND_SHARED, 0) if target == 0 else (KIND_MULE, int(target))
        raise ValueError("invalid mule")

    def key(self, target: MuleTarget) -> str:
        """Stats key of a target: ``"shared"``, ``"mule1"``, ``"farm:NAME"``."""
        kind, ident = self._resolve(target, strict=False)
        if kind == KIND_SHARED:
            return "shared"
        if kind == KIND_MULE:
            return f"mule{ident}"
        return f"farm:{self.farm_names()[ident - 1]}"

    # -- sending ------------------------------------------------------------------

    def send_wait(self, message: bytes | str, target: MuleTarget, timeout: float) -> bool:
        """Queue ``message`` like ``uwsgi.mule_msg(message, target)``, waiting
        up to ``timeout`` seconds for room instead of failing at once.

        Returns True when queued, False when the queue stayed full until the
        deadline, the message can never fit, or the mule id does not exist.
        Raises ValueError like ``mule_msg``: no mules, unknown farm, ``str``
        farm name. The GIL is released while waiting.
        """
        if isinstance(message, str):
            message = message.encode()
        elif not isinstance(message, bytes):
            message = bytes(message)
        if self.mule_count < 1:
            raise ValueError("no mule configured")
        kind, ident = self._resolve(target, strict=True)
        result = int(self._send(kind, ident, message, len(message), max(0.0, float(timeout))))
        if result == 1:
            return True
        if result == _ERR_NOT_READY:
            raise RuntimeError("uwsgi-mules plugin is not initialized in this process")
        return False

    def writer(self, target: MuleTarget) -> tuple[int, int, int]:
        """``(fd, kind, id)``: the writer end of a queue, for senders that
        write themselves (no "queue full" log line; count with
        :meth:`count_sent`); fd -1 when unknown."""
        kind, ident = self._resolve(target, strict=False)
        return int(self._lib.mules_plugin_writer_fd(kind, ident)), kind, ident

    def count_sent(self, kind: int, ident: int, count: int) -> None:
        """Report ``count`` messages written to queue ``(kind, ident)``."""
        self._lib.mules_plugin_count_sent_n(kind, ident, count)

    # -- counters and depths --------------------------------------------------------------

    def count_taken(self, mule_id: int, count: int = 1) -> None:
        """Report ``count`` messages read by mule ``mule_id`` (its *taken* counter)."""
        self._lib.mules_plugin_count_taken_n(int(mule_id), int(count))

    def count_received(self, target: MuleTarget = None, *, mule_id: int | None = None) -> None:
        """Report one message read.

        With a ``target`` (``0`` for the shared queue, a mule id, a farm name)
        it is counted as received from that queue. Called from a mule loop
        that cannot tell which queue a message came from (``mule_get_msg``
        does not say), pass ``mule_id`` only: it is counted as *taken* by
        that mule (see :attr:`QueueInfo.taken`).
        """
        if mule_id is not None and target is None:
            self._lib.mules_plugin_count_taken(int(mule_id))
            return
        kind, ident = self._resolve(target, strict=False)
        self._lib.mules_plugin_count_received(kind, ident)

    def queue_info(self, target: MuleTarget) -> QueueInfo:
        """Depth and counters of one queue (see :class:`QueueInfo`)."""
        key = self.key(target)
        kind, ident = self._resolve(target, strict=False)
        info = _QueueInfo()
        if self._lib.mules_plugin_queue_info(kind, ident, ctypes.byref(info)) != 0:
            raise ValueError(f"no queue {key!r} (this instance has {self.mule_count} mule(s))")
        return QueueInfo(
            key=key,
            sent=int(info.sent),
            refused=int(info.refused),
            received=int(info.received),
            taken=int(info.taken),
            depth_bytes=_unknown(info.depth_bytes),
            depth_messages=_unknown(info.depth_messages),
            mem_used=_unknown(info.mem_used),
            mem_limit=_unknown(info.mem_limit),
        )

    def depth(self, target: MuleTarget) -> QueueCounters:
        """Counters and depth of one queue as :class:`QueueCounters`."""
        return self.queue_info(target).counters()

    def all_queues(self) -> list[QueueInfo]:
        """:class:`QueueInfo` of the shared queue, every mule and every farm."""
        if self.mule_count < 1:
            return []
        targets: list[MuleTarget] = [None]
        targets += list(range(1, self.mule_count + 1))
        targets += [name.encode(errors="surrogateescape") for name in self.farm_names()]
        return [self.queue_info(target) for target in targets]

    def stats(self) -> BackendStats:
        """All queues, keyed ``"shared"``, ``"mule1"``..., ``"farm:NAME"``."""
        return BackendStats({info.key: info.counters() for info in self.all_queues()})

    def __repr__(self) -> str:
        return f"<PluginBridge abi={self.abi_version} mules={self.mule_count} path={self.path!r}>"


def _plugin_paths_from_maps() -> list[str]:
    """Paths of loaded ``*mules_plugin.so`` files (Linux ``/proc/self/maps``)."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if path.endswith(PLUGIN_FILENAME) and path not in paths:
                        paths.append(path)
    except OSError:
        pass
    return paths


def _candidates() -> list[tuple[ctypes.CDLL, str | None]]:
    found: list[tuple[ctypes.CDLL, str | None]] = []
    try:
        found.append((ctypes.CDLL(None), None))  # RTLD_GLOBAL plugins are here
    except OSError:
        pass
    mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_NOW", 0)
    for path in _plugin_paths_from_maps():
        try:
            # RTLD_NOLOAD: only take a handle on an already loaded copy
            found.append((ctypes.CDLL(path, mode=mode), path))
        except OSError:
            continue
    return found


def load_plugin() -> PluginBridge | None:
    """The bridge to the plugin loaded in this uWSGI process, or None.

    None when the plugin is not loaded, has another ABI version or is not
    initialized. Never raises.
    """
    try:
        for lib, path in _candidates():
            try:
                lib.mules_plugin_abi_version  # noqa: B018 - AttributeError when absent
            except AttributeError:
                continue
            bridge = PluginBridge(lib, path)
            version = bridge.abi_version
            if version != ABI_VERSION:
                logger.warning("uwsgi-mules plugin ABI %s found, %s expected: not used", version, ABI_VERSION)
                return None
            if not bridge.ready():
                logger.warning("uwsgi-mules plugin loaded but not initialized: not used")
                return None
            return bridge
    except Exception as exc:  # noqa: BLE001 - an optional plugin (foreign code) must never break the caller
        logger.warning("uwsgi-mules plugin lookup failed: %s", exc)
    return None


__all__ = ["ABI_VERSION", "PLUGIN_FILENAME", "PluginBridge", "QueueInfo", "load_plugin"]
