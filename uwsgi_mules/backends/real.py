"""The real backend: a thin wrapper over uWSGI's embedded ``uwsgi`` module."""

from __future__ import annotations

import atexit
import ctypes
import errno
import functools
import os
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ..envelope import Signer, speedups
from ..instance import RUNTIME_DIR_ENV, c_getenv, default_runtime_dir, load_or_create_key, runtime_base
from ..layout.topology import TOPOLOGY_ENV, Topology
from .base import Backend, BackendStats, MessageHook, MuleTarget, logger
from .process_env import process_getenv


class RealBackend(Backend):
    """Delegates to ``import uwsgi``; adds topology discovery and the plugin."""

    name = "uwsgi"
    is_real = True

    def __init__(self, uwsgi: ModuleType, plugin: Any = None, *, load_plugin: bool = True) -> None:
        self._uwsgi = uwsgi
        #: the C functions themselves, for the typed layer's fast paths
        self.raw_mule_msg = uwsgi.mule_msg
        self.raw_mule_get_msg = uwsgi.mule_get_msg
        self._plugin = plugin
        self._plugin_checked = plugin is not None or not load_plugin
        self._topology: Topology | None = None
        self._topology_checked = False
        self._lock = threading.Lock()
        self._signer: Signer | None = None
        self._runtime_dir: Path | None = None
        self._writers: dict[Any, Any] = {}  # QueueWriter, or the C one

    @property
    def uwsgi(self) -> ModuleType:
        return self._uwsgi

    @property
    def plugin(self) -> Any:
        """The loaded uwsgi-mules C plugin bridge, or None."""
        if not self._plugin_checked:
            self._plugin_checked = True
            try:
                from .plugin_bridge import load_plugin
            except ImportError:  # pragma: no cover - bridge missing from a partial install
                return None
            self._plugin = load_plugin()  # never raises: a broken plugin is logged and not used
        return self._plugin

    # -- identity -----------------------------------------------------------

    def mule_id(self) -> int:
        return int(self._uwsgi.mule_id())

    def worker_id(self) -> int:
        return int(self._uwsgi.worker_id())

    def in_farm(self, name: str | None = None) -> bool | None:
        if name is None:
            return self._uwsgi.in_farm()
        return self._uwsgi.in_farm(name)

    # -- raw messaging ----------------------------------------------------------

    def mule_msg(self, message: bytes | str, target: MuleTarget = None) -> bool:
        if target is None:
            return bool(self._uwsgi.mule_msg(message))
        return bool(self._uwsgi.mule_msg(message, target))

    def farm_msg(self, farm: str, message: bytes | str) -> None:
        self._uwsgi.farm_msg(farm, message)

    def mule_get_msg(
        self,
        signals: bool = True,
        farms: bool = True,
        buffer_size: int = 65536,
        timeout: int = -1,
    ) -> bytes | None:
        return self._uwsgi.mule_get_msg(signals, farms, buffer_size, timeout)

    def farm_get_msg(self) -> bytes | None:
        return self._uwsgi.farm_get_msg()

    def _set_callback(self, name: str, callback: Any) -> None:
        """Set (or, for None, remove) a callable uWSGI looks up by name in the
        ``uwsgi`` module's dict: ``mule_msg_hook``, ``spooler``, ``post_fork_hook``."""
        if callback is not None:
            setattr(self._uwsgi, name, callback)
        elif hasattr(self._uwsgi, name):
            delattr(self._uwsgi, name)

    def get_msg_hook(self) -> MessageHook | None:
        return getattr(self._uwsgi, "mule_msg_hook", None)

    def set_msg_hook(self, hook: MessageHook | None) -> None:
        self._set_callback("mule_msg_hook", hook)

    def guard_msg_hook(self, wrap: Any) -> None:
        module = self._uwsgi
        if isinstance(module, _GuardedModule):
            module.__dict__["__uwsgi_mules_wrap__"] = wrap
            return
        module.__dict__["__uwsgi_mules_wrap__"] = wrap
        try:
            module.__class__ = _GuardedModule
        except TypeError:  # not a plain module object (a stand-in): nothing to guard
            pass

    # -- layout ------------------------------------------------------------------

    def topology(self) -> Topology | None:
        """Exact layout from the plugin or the rendered config's environment,
        else parsed from the master's command line and config files."""
        if not self._topology_checked:
            with self._lock:
                if not self._topology_checked:
                    self._topology = self._discover_topology()
                    self._topology_checked = True
        return self._topology

    def _discover_topology(self) -> Topology | None:
        plugin = self.plugin
        if plugin is not None:
            try:
                return plugin.topology()
            except (OSError, ValueError) as exc:  # a name it cannot decode, a layout that does not validate
                logger.warning("uwsgi-mules plugin could not report the layout: %s", exc)
        from ..layout.uwsgi_args import options_from_argv, options_from_environ, process_environ

        opt = getattr(self._uwsgi, "opt", {}) or {}
        pid = self._uwsgi.masterpid() if hasattr(self._uwsgi, "masterpid") else 0
        # uWSGI reads UWSGI_* variables as options before its command line
        # (a forked worker's /proc/self/environ is the master's start environment too)
        environ = (pid and process_environ(pid)) or process_environ("self") or dict(os.environ)
        try:
            from_env = process_getenv(TOPOLOGY_ENV)
            if from_env:
                topology = Topology.from_env_value(from_env).after_options(
                    options_from_environ(environ), source=f"{TOPOLOGY_ENV} and UWSGI_* variables"
                )
                source = TOPOLOGY_ENV
            else:
                argv = _master_argv(self._uwsgi)
                if not argv:
                    return None
                topology = Topology.from_options(
                    options_from_argv(argv, environ=environ), source="command line and UWSGI_* variables"
                )
                source = "the command line"
            if topology.agrees_with_opt(opt):
                return topology
            logger.warning(
                "uwsgi-mules could not read the mule/farm layout from %s (it disagrees with uwsgi.opt); "
                "mule ids are only sent when uwsgi.opt proves them and farm names are checked by uWSGI "
                "(render the config with uwsgi_mules.config or load the plugin for exact checks)",
                source,
            )
        except (OSError, ValueError) as exc:  # TopologyError is a ValueError
            logger.warning(
                "uwsgi-mules could not read the mule/farm layout (%s); mule ids are only sent when "
                "uwsgi.opt proves them and farm names are checked by uWSGI", exc
            )
        return None

    # -- the instance ------------------------------------------------------------------

    def runtime_dir(self) -> Path:
        if self._runtime_dir is None:
            master = int(self._uwsgi.masterpid()) if hasattr(self._uwsgi, "masterpid") else 0
            self._runtime_dir = default_runtime_dir(master or os.getpid())  # the plugin's rule
        return self._runtime_dir

    def signer(self) -> Signer:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    if c_getenv(RUNTIME_DIR_ENV):  # configured: only that directory must be private
                        key = load_or_create_key(self.runtime_dir())
                    else:  # the default location: private from its base down, and swept
                        key = load_or_create_key(self.runtime_dir(), log=self.log, private_from=runtime_base())
                    self._signer = Signer(key)
        return self._signer

    def getenv(self, name: str) -> str | None:
        return process_getenv(name)

    def mule_harakiri(self) -> int:
        return _int_option(self._opt("mule-harakiri"), 0)

    def reload_mercy(self) -> int:
        return _int_option(self._opt("mule-reload-mercy"), 60)

    def worker_states(self) -> list[tuple[int, bool]] | None:
        try:
            return [(int(w.get("pid", 0)), w.get("status") == b"busy" or w.get("status") == "busy")
                    for w in self._uwsgi.workers()]
        except (AttributeError, TypeError, ValueError, SystemError):  # no workers() (pyuwsgi) or not a list of dicts
            return None

    # -- layout checks -------------------------------------------------------------------

    def provable_mule_count(self) -> int | None:
        topology = self.topology()
        if topology is not None:
            return topology.mule_count
        from ..layout.uwsgi_args import opt_mule_count_bound

        return opt_mule_count_bound(getattr(self._uwsgi, "opt", {}) or {})

    def send_refused_bad_target(self) -> bool:
        # the raw send is a plain write(): its errno is still this thread's
        return _last_errno() == errno.EBADF

    # -- plugin capabilities ---------------------------------------------------------

    def raw_sender(self, target: MuleTarget) -> Any:
        """With the plugin: a writer straight to the queue's socket (no
        "MULE MSG QUEUE IS FULL" log line, sends counted in the plugin);
        else uWSGI's C ``mule_msg``."""
        plugin = self.plugin
        if plugin is None:
            return self.raw_mule_msg
        key = target.encode() if isinstance(target, str) else target
        writer = self._writers.get(key)
        if writer is None:
            try:
                fd, kind, ident = plugin.writer(target)
            except ValueError:
                return self.raw_mule_msg  # unknown farm: mule_msg raises the usual error
            if fd < 0:
                return self.raw_mule_msg
            writer = make_queue_writer(fd, kind, ident, plugin)
            with self._lock:
                self._writers[key] = writer
                if len(self._writers) == 1:
                    atexit.register(self._flush_writers)
        return writer.send

    def _flush_writers(self) -> None:
        for writer in list(self._writers.values()):
            writer.flush()

    def send_wait(self, message: bytes, target: MuleTarget, timeout: float) -> bool | None:
        plugin = self.plugin
        if plugin is None:
            return None
        return bool(plugin.send_wait(message, target, timeout))

    def stats(self) -> BackendStats | None:
        plugin = self.plugin
        return plugin.stats() if plugin is not None else None

    def receiver(self) -> Any:
        return self.raw_mule_get_msg

    def counts_taken(self) -> bool:
        return self.plugin is not None

    def note_taken(self, mule_id: int, count: int = 1) -> None:
        plugin = self.plugin
        if plugin is not None:
            plugin.count_taken(mule_id, count)

    def log(self, message: str) -> None:
        self._uwsgi.log(message)

    # -- signals, timers, locks, spooler ------------------------------------------

    def register_signal(self, signum: int, target: str, handler: Any) -> None:
        self._uwsgi.register_signal(signum, target, handler)

    def signal(self, signum: int) -> None:
        self._uwsgi.signal(signum)

    def signal_registered(self, signum: int) -> bool:
        return bool(self._uwsgi.signal_registered(signum))

    def signal_wait(self, signum: int | None = None) -> object:
        if signum is None:
            return self._uwsgi.signal_wait()
        return self._uwsgi.signal_wait(signum)

    def signal_received(self) -> int:
        return int(self._uwsgi.signal_received())

    def add_timer(self, signum: int, seconds: int) -> None:
        self._uwsgi.add_timer(signum, seconds)

    def add_rb_timer(self, signum: int, seconds: int, iterations: int = 0) -> None:
        self._uwsgi.add_rb_timer(signum, seconds, iterations)

    def add_cron(self, signum: int, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
        return bool(self._uwsgi.add_cron(signum, minute, hour, day, month, weekday))

    def add_file_monitor(self, signum: int, path: str) -> None:
        self._uwsgi.add_file_monitor(signum, path)

    def lock(self, number: int = 0) -> None:
        self._uwsgi.lock(number)

    def unlock(self, number: int = 0) -> None:
        self._uwsgi.unlock(number)

    def is_locked(self, number: int = 0) -> bool:
        return bool(self._uwsgi.is_locked(number))

    def _opt(self, name: str) -> Any:
        opt = getattr(self._uwsgi, "opt", {}) or {}
        value = opt.get(name, opt.get(name.encode(), None))
        return value[-1] if isinstance(value, list) else value

    def lock_count(self) -> int | None:
        value = self._opt("locks")
        if value is None:
            return 0
        try:
            return int(value.decode() if isinstance(value, bytes) else value)
        except ValueError:
            return None

    def i_am_the_spooler(self) -> bool:
        return bool(self._uwsgi.i_am_the_spooler())

    def has_spooler(self) -> bool | None:
        return self._opt("spooler") is not None or self._opt("spooler-external") is not None

    def spooler_ordered(self) -> bool | None:
        return self._opt("spooler-ordered") is not None

    def spool(self, *args: Any, **kwargs: Any) -> bytes:
        return self._uwsgi.spool(*args, **kwargs)

    def spool_key_dir(self) -> Path | None:
        opt = getattr(self._uwsgi, "opt", {}) or {}
        for name in ("spooler", "spooler-external"):
            value = opt.get(name, opt.get(name.encode(), None))
            if isinstance(value, list):
                value = value[0] if value else None
            if value:
                text = value.decode(errors="surrogateescape") if isinstance(value, bytes) else str(value)
                return Path(os.path.abspath(text))
        return None

    def get_spooler(self) -> Any:
        return getattr(self._uwsgi, "spooler", None)

    def set_spooler(self, handler: Any) -> None:
        self._set_callback("spooler", handler)

    def get_post_fork_hook(self) -> Any:
        return getattr(self._uwsgi, "post_fork_hook", None)

    def set_post_fork_hook(self, hook: Any) -> None:
        self._set_callback("post_fork_hook", hook)

    def set_user_harakiri(self, seconds: int) -> None:
        self._uwsgi.set_user_harakiri(seconds)

    def register_rpc(self, name: str, func: Any, argc: int = 0) -> bool:
        return bool(self._uwsgi.register_rpc(name, func, argc))

    def rpc_call(self, name: str, *args: bytes) -> bytes | None:
        # Python 3 uWSGI only accepts bytes here ("unable to call rpc function")
        raw_name = name.encode() if isinstance(name, str) else name
        return self._uwsgi.call(raw_name, *(a.encode() if isinstance(a, str) else a for a in args))

    # -- caches: uWSGI parses the cache name with "s" (None is not accepted) --

    def cache_set(self, key: str | bytes, value: bytes, expires: int = 0, cache: str | None = None) -> bool | None:
        return self._uwsgi.cache_set(key, value, expires, *_cache_arg(cache))

    def cache_update(self, key: str | bytes, value: bytes, expires: int = 0, cache: str | None = None) -> bool | None:
        return self._uwsgi.cache_update(key, value, expires, *_cache_arg(cache))

    def cache_get(self, key: str | bytes, cache: str | None = None) -> bytes | None:
        return self._uwsgi.cache_get(key, *_cache_arg(cache))

    def cache_exists(self, key: str | bytes, cache: str | None = None) -> bool | None:
        return self._uwsgi.cache_exists(key, *_cache_arg(cache))

    def cache_del(self, key: str | bytes, cache: str | None = None) -> bool | None:
        return self._uwsgi.cache_del(key, *_cache_arg(cache))

    def cache_keys(self, cache: str | None = None) -> list[bytes]:
        return list(self._uwsgi.cache_keys(*_cache_arg(cache)))


def _cache_arg(cache: str | None) -> tuple[str, ...]:
    return () if cache is None else (cache,)


class QueueWriter:
    """Writes messages straight to a queue's socket (the plugin gave its fd):
    a full queue is a False, with no uWSGI log line; sends are reported to the
    plugin's ``sent`` counter in batches of :attr:`BATCH`, at once when the
    last report is older than a second, and at exit."""

    BATCH = 64
    __slots__ = ("fd", "flushed_at", "ident", "kind", "plugin", "unreported")

    def __init__(self, fd: int, kind: int, ident: int, plugin: Any) -> None:
        self.fd = fd
        self.kind = kind
        self.ident = ident
        self.plugin = plugin
        self.unreported = 0
        self.flushed_at = 0.0

    def send(self, message: bytes, target: Any = None, _write: Any = os.write, _now: Any = time.monotonic) -> bool:
        try:
            _write(self.fd, message)
        except BlockingIOError:
            return False
        except OSError as exc:  # EMSGSIZE and the like: as uwsgi.mule_msg, refused
            if exc.errno in (errno.EMSGSIZE, errno.ENOBUFS):
                return False
            raise
        self.unreported += 1
        if self.unreported >= self.BATCH or _now() - self.flushed_at >= 1.0:
            self.flush()
        return True

    def flush(self) -> None:
        count, self.unreported = self.unreported, 0
        self.flushed_at = time.monotonic()
        if count:
            self.plugin.count_sent(self.kind, self.ident, count)


def make_queue_writer(fd: int, kind: int, ident: int, plugin: Any) -> Any:
    """A :class:`QueueWriter`, or its C twin when the speedups are built
    (same behaviour: ``send``, ``flush``, ``unreported``)."""
    fast = speedups()
    if fast is None:
        return QueueWriter(fd, kind, ident, plugin)
    return fast.QueueWriter(fd, functools.partial(plugin.count_sent, kind, ident), QueueWriter.BATCH)


class _GuardedModule(ModuleType):
    """The ``uwsgi`` module once uwsgi-mules installed its message hook: an
    assignment to ``uwsgi.mule_msg_hook`` is chained behind ours (uWSGI's C
    code reads the hook from the module's dict)."""

    def __setattr__(self, name: str, value: Any) -> None:
        wrap = self.__dict__.get("__uwsgi_mules_wrap__")
        if name == "mule_msg_hook" and wrap is not None and value is not None:
            value = wrap(value)
        super().__setattr__(name, value)


def _int_option(value: Any, default: int) -> int:
    """An integer option of ``uwsgi.opt`` (bytes, str, or a list of them)."""
    if isinstance(value, list):
        value = value[-1] if value else None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return int(value) if value not in (None, "", True) else default
    except (TypeError, ValueError):
        return default


def _last_errno() -> int | None:
    """The C library's ``errno`` of this thread (not ctypes' private copy)."""
    try:
        location = ctypes.CDLL(None).__errno_location
    except (OSError, AttributeError):  # pragma: no cover - not glibc/musl
        return None
    location.restype = ctypes.POINTER(ctypes.c_int)
    return int(location().contents.value)


def _master_argv(uwsgi: ModuleType) -> list[str]:
    """The uWSGI command line of this instance, from /proc (Linux)."""
    pid = uwsgi.masterpid() if hasattr(uwsgi, "masterpid") else 0
    for candidate in (pid, os.getpid()):
        if not candidate:
            continue
        try:
            with open(f"/proc/{candidate}/cmdline", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        argv = [part.decode(errors="surrogateescape") for part in raw.split(b"\0") if part]
        if argv:
            return argv
    return []
