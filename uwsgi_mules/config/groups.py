"""The general option groups of a section.

Methods that share a name with uwsgiconf's (``uwsgiconf.options``) take
uwsgiconf's parameters with the same meaning, so a uwsgiconf configuration
keeps working with ``uwsgi_mules.config.Section``; the few extra keyword
parameters uwsgi-mules had before are kept. Options uWSGI 2.0 does not
know are never rendered. A parameter left at None keeps what an earlier
call set; ``False`` removes a flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TopologyError

if TYPE_CHECKING:
    from .section import Section

StrList = str | Path | Sequence[str | Path] | None


def _as_list(values: StrList) -> list[str]:
    if values is None:
        return []
    if isinstance(values, (str, Path)):
        return [str(values)]
    return [str(v) for v in values]


class Group:
    def __init__(self, section: Section) -> None:
        self._section = section

    def _set(self, key: str, value: str | int | bool | Path | None) -> None:
        """Set ``key``; None leaves it as it is and False removes a flag (as
        uwsgiconf does, so calls with other parameters keep earlier ones)."""
        if value is not None:
            self._section.options.set(key, str(value) if isinstance(value, Path) else value)

    def _extend(self, key: str, values: StrList) -> None:
        self._section.options.extend(key, _as_list(values))


class MasterProcess(Group):
    """``section.master_process``."""

    def set_basic_params(
        self,
        *,
        enable: bool | None = None,
        name: str | None = None,
        no_orphans: bool | None = None,
        as_root: bool | None = None,
        subproc_check_interval: int | None = None,
        fifo_file: StrList = None,
    ) -> Section:
        """uwsgiconf's parameters: ``enable`` a master process (mules and
        farms need it); ``name``: its process name (``procname-master``);
        ``no_orphans``: workers die with the master; ``as_root``: keep root
        in the master; ``subproc_check_interval`` seconds; ``fifo_file``:
        master FIFO path(s)."""
        self._set("master", enable)
        self._set("procname-master", name)
        self._set("no-orphans", no_orphans)
        self._set("master-as-root", as_root)
        self._set("check-interval", subproc_check_interval)
        self._extend("master-fifo", fifo_file)
        return self._section


class MainProcess(Group):
    """``section.main_process``: how uWSGI itself runs."""

    def set_basic_params(
        self,
        *,
        touch_reload: StrList = None,
        priority: int | None = None,
        vacuum: bool | None = None,
        binary_path: str | None = None,
        honour_stdin: bool | None = None,
        die_on_term: bool | None = None,
        lazy_apps: bool | None = None,
        chdir: str | None = None,
        strict: bool | None = None,
    ) -> Section:
        """uwsgiconf's parameters: ``touch_reload``: file(s) whose touch
        reloads uWSGI; ``priority``: nice value (``prio``); ``vacuum``:
        remove sockets and pidfiles at exit; ``binary_path``: the uwsgi
        binary used to reload; ``honour_stdin``: keep stdin.

        uwsgi-mules extras: ``die_on_term``: SIGTERM stops uWSGI 2.0 (instead
        of reloading it; uwsgiconf: ``master_process.set_exit_events``);
        ``lazy_apps``: as ``workers.set_basic_params(lazy_apps=...)``;
        ``chdir``: as :meth:`change_dir`; ``strict``: refuse unknown options
        (uwsgiconf: ``Section(strict_config=True)``)."""
        self._extend("touch-reload", touch_reload)
        self._set("prio", priority)
        self._set("vacuum", vacuum)
        self._set("binary-path", binary_path)
        self._set("honour-stdin", honour_stdin)
        self._set("die-on-term", die_on_term)
        self._set("lazy-apps", lazy_apps)
        self._set("chdir", chdir)
        self._set("strict", strict)
        return self._section

    def change_dir(self, to: str | Path, *, after_app_loading: bool = False) -> Section:
        """Change to directory ``to`` before loading the apps (``chdir``) or
        after (``chdir2``), as in uwsgiconf."""
        self._set("chdir2" if after_app_loading else "chdir", to)
        return self._section

    def load_plugin(self, path: str) -> Section:
        """Load an external uWSGI plugin (``plugin = path``, repeatable)."""
        self._section.options.set("plugin", path, multi=True)
        return self._section


class Python(Group):
    """``section.python``."""

    def set_basic_params(
        self,
        *,
        version: str | int = -1,
        python_home: str | None = None,
        enable_threads: bool | None = None,
        search_path: StrList = None,
        python_binary: str | None = None,
        tracebacker_path: str | None = None,
        plugin_dir: str | None = None,
        os_env_reload: bool | None = None,
        optimization_level: int | None = None,
        import_modules: StrList = None,
        shared_import: StrList = None,
    ) -> Section:
        """uwsgiconf's parameters: ``python_home``: virtualenv (``home``);
        ``enable_threads``; ``search_path``: added to ``sys.path``
        (``pythonpath``); ``python_binary`` (``py-program-name``);
        ``tracebacker_path`` (``py-tracebacker``); ``plugin_dir``: where
        uWSGI looks for plugins; ``os_env_reload``; ``optimization_level``.
        ``version`` names uwsgiconf's python plugin: uwsgi-mules renders no
        plugin line (the ``uwsgi`` binary and pyuwsgi embed Python), so only
        the default is accepted.

        uwsgi-mules extras: ``import_modules`` load in the master (and
        workers); with ``lazy-apps`` mules only get ``shared_import``
        modules (uwsgiconf: :meth:`import_module`). List parameters add to
        earlier calls."""
        if version not in (-1, None):
            raise TopologyError(
                f"python version {version!r}: uwsgi-mules renders no python plugin line (the uwsgi binary and "
                "pyuwsgi embed Python); load one with main_process.load_plugin(...) if yours needs it"
            )
        self._set("home", python_home)
        self._set("enable-threads", enable_threads)
        self._extend("pythonpath", search_path)
        self._set("py-program-name", python_binary)
        self._set("py-tracebacker", tracebacker_path)
        self._set("plugins-dir", plugin_dir)
        self._set("reload-os-env", os_env_reload)
        self._set("optimize", optimization_level)
        self._extend("import", import_modules)
        self._extend("shared-import", shared_import)
        return self._section

    def import_module(self, modules: StrList, *, shared: bool = False, into_spooler: bool = False) -> Section:
        """Import module(s) in every process (``import``), once in the
        master (``shared``; mules get these with ``lazy-apps``) or in the
        spooler (``into_spooler``), as in uwsgiconf."""
        if shared and into_spooler:
            raise TopologyError("import_module: set shared or into_spooler, not both")
        self._extend("spooler-import" if into_spooler else "shared-import" if shared else "import", modules)
        return self._section

    def set_wsgi_params(
        self,
        *,
        module: str | Path | None = None,
        callable_name: str | None = None,
        env_strategy: str | None = None,
        wsgi_file: str | None = None,
    ) -> Section:
        """The WSGI application, as in uwsgiconf: ``module="pkg.wsgi:app"``
        (``module``), or a path with ``/`` (``wsgi-file``);
        ``callable_name`` (default ``application``); ``env_strategy``:
        ``cheat`` or ``holy``. Extra: ``wsgi_file`` names a file directly."""
        text = str(module) if module is not None else None
        if text is not None and "/" in text:
            self._set("wsgi-file", text)
        else:
            self._set("module", text)
        if wsgi_file is not None:
            self._set("wsgi-file", wsgi_file)
        self._set("callable", callable_name)
        if env_strategy not in (None, "cheat", "holy"):
            raise TopologyError(f"env_strategy must be 'cheat' or 'holy', got {env_strategy!r}")
        self._set("wsgi-env-behaviour", env_strategy)
        return self._section


class Socket:
    """A socket to serve on (``section.networking.sockets.default(...)``)."""

    #: the uWSGI option that binds it
    name = "socket"

    def __init__(self, address: str | Path) -> None:
        self.address = str(address)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r})"


class SocketHttp(Socket):
    """An HTTP socket the workers answer themselves (``http-socket``)."""

    name = "http-socket"


class Sockets:
    """``section.networking.sockets``: uwsgiconf's socket factories (the two
    kinds uwsgi-mules renders)."""

    default = Socket
    uwsgi = Socket
    http = SocketHttp


class Networking(Group):
    """``section.networking``."""

    sockets = Sockets

    def register_socket(self, socket: Socket | str | Path | list[Socket] | tuple[Socket, ...], *,
                        http: bool = False) -> Section:
        """Serve on ``socket``: a uwsgiconf-style socket object
        (``networking.sockets.default(address)`` / ``.http(address)``) or a
        list of them, or an address (uwsgi protocol; HTTP with ``http``).
        Repeatable."""
        items: Sequence[Socket | str | Path] = list(socket) if isinstance(socket, (list, tuple)) else [socket]
        for item in items:
            if isinstance(item, Socket):
                key, address = item.name, item.address
            elif isinstance(item, (str, Path)):
                key, address = ("http-socket" if http else "socket"), str(item)
            else:
                raise TopologyError(f"register_socket: expected an address or networking.sockets.*(...), got {item!r}")
            self._section.options.set(key, address, multi=True)
        return self._section

    def http_socket(self, address: str) -> Section:
        """Shortcut for ``register_socket(address, http=True)``."""
        return self.register_socket(address, http=True)


class Monitoring(Group):
    """``section.monitoring``."""

    def set_stats_params(
        self,
        address: str | None = None,
        *,
        enable_http: bool | None = None,
        minify: bool | None = None,
        no_cores: bool | None = None,
        no_metrics: bool | None = None,
        push_interval: int | None = None,
    ) -> Section:
        """uwsgiconf's parameters: serve uWSGI's JSON stats on ``address``
        (``127.0.0.1:9191`` or a unix path); ``enable_http``: over HTTP;
        ``minify``; ``no_cores`` / ``no_metrics``: leave them out;
        ``push_interval``: default seconds between stats pushes."""
        self._set("stats", address)
        self._set("stats-http", enable_http)
        self._set("stats-minified", minify)
        self._set("stats-no-cores", no_cores)
        self._set("stats-no-metrics", no_metrics)
        self._set("stats-pusher-default-freq", push_interval)
        return self._section

    def set_metrics_params(
        self,
        *,
        enable: bool | None = None,
        store_dir: str | None = None,
        restore: bool | None = None,
        no_cores: bool | None = None,
    ) -> Section:
        """uwsgiconf's parameters: the metrics subsystem; ``store_dir``:
        write them as files there; ``restore``: read them back at start;
        ``no_cores``: no per-core metrics."""
        self._set("enable-metrics", enable)
        self._set("metrics-dir", store_dir)
        self._set("metrics-dir-restore", restore)
        self._set("metrics-no-cores", no_cores)
        return self._section
