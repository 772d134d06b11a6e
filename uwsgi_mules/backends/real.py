"""The real backend: a thin wrapper over uWSGI's embedded ``uwsgi`` module."""

from __future__ import annotations

import ctypes
import os
import threading
from types import ModuleType
from typing import Any

from ..topology import TOPOLOGY_ENV, Topology
from .base import Backend, BackendStats, MessageHook, MuleTarget, logger


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
            try:
                self._plugin = load_plugin()
            except Exception as exc:  # a broken plugin must not break sending
                logger.warning("uwsgi-mules plugin present but unusable: %s", exc)
                self._plugin = None
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

    def get_msg_hook(self) -> MessageHook | None:
        return getattr(self._uwsgi, "mule_msg_hook", None)

    def set_msg_hook(self, hook: MessageHook | None) -> None:
        if hook is None:
            if hasattr(self._uwsgi, "mule_msg_hook"):
                del self._uwsgi.mule_msg_hook
        else:
            self._uwsgi.mule_msg_hook = hook

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
            except Exception as exc:
                logger.warning("uwsgi-mules plugin could not report the layout: %s", exc)
        from_env = process_getenv(TOPOLOGY_ENV)
        if from_env:
            return Topology.from_env_value(from_env)
        try:
            from ..uwsgi_args import options_from_argv

            argv = _master_argv(self._uwsgi)
            if argv:
                parsed = Topology.from_options(options_from_argv(argv), source="command line")
                if _agrees_with_opt(parsed, getattr(self._uwsgi, "opt", {})):
                    return parsed
                logger.warning(
                    "uwsgi-mules could not read the mule/farm layout from the command line; "
                    "mule ids and farm names are not validated before sending (render the "
                    "config with uwsgi_mules.config or load the plugin for exact checks)"
                )
        except Exception as exc:
            logger.warning(
                "uwsgi-mules could not read the mule/farm layout (%s); mule ids and "
                "farm names are not validated before sending", exc
            )
        return None

    # -- plugin capabilities ---------------------------------------------------------

    def send_wait(self, message: bytes, target: MuleTarget, timeout: float) -> bool | None:
        plugin = self.plugin
        if plugin is None:
            return None
        return bool(plugin.send_wait(message, target, timeout))

    def stats(self) -> BackendStats | None:
        plugin = self.plugin
        return plugin.stats() if plugin is not None else None

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

    def get_spooler(self) -> Any:
        return getattr(self._uwsgi, "spooler", None)

    def set_spooler(self, handler: Any) -> None:
        if handler is None:
            if hasattr(self._uwsgi, "spooler"):
                del self._uwsgi.spooler
        else:
            self._uwsgi.spooler = handler

    def get_post_fork_hook(self) -> Any:
        return getattr(self._uwsgi, "post_fork_hook", None)

    def set_post_fork_hook(self, hook: Any) -> None:
        if hook is None:
            if hasattr(self._uwsgi, "post_fork_hook"):
                del self._uwsgi.post_fork_hook
        else:
            self._uwsgi.post_fork_hook = hook

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

def process_getenv(name: str) -> str | None:
    """An environment variable as the C library sees it.

    uWSGI's ``env`` option calls ``setenv()`` while parsing its options; under
    pyuwsgi the interpreter (and ``os.environ``) already exists by then, so
    only the C environment has the value.
    """
    value = os.environ.get(name)
    if value is not None:
        return value
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no C library to ask
        return None
    getenv = libc.getenv
    getenv.restype = ctypes.c_char_p
    getenv.argtypes = [ctypes.c_char_p]
    raw = getenv(name.encode())
    return raw.decode(errors="surrogateescape") if raw else None


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


def _agrees_with_opt(parsed: Topology, opt: dict[str, Any]) -> bool:
    """Cross-check a parsed layout with ``uwsgi.opt`` (which keeps only the
    last value of repeated options): refuse a layout that misses mules or
    farms the server has."""
    def text(value: Any) -> str:
        if isinstance(value, list):
            value = value[-1]
        return value.decode() if isinstance(value, bytes) else str(value)

    if ("mule" in opt or "mules" in opt) and parsed.mule_count == 0:
        return False
    if "farm" in opt:
        return bool(parsed.farms) and parsed.farms[-1].option_value() == text(opt["farm"]).strip()
    return parsed.mule_count > 0
