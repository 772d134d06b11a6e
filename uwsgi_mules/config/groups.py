"""The general option groups of a section (names follow uwsgiconf)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .section import Section


def _as_list(values: str | Sequence[str] | None) -> list[str]:
    if values is None:
        return []
    return [values] if isinstance(values, str) else list(values)


class Group:
    def __init__(self, section: Section) -> None:
        self._section = section


class MasterProcess(Group):
    """``section.master_process``."""

    def set_basic_params(self, *, enable: bool | None = None) -> Section:
        """``enable``: run a master process (mules and farms need it)."""
        self._section.options.set("master", enable)
        return self._section


class MainProcess(Group):
    """``section.main_process``: how uWSGI itself runs."""

    def set_basic_params(
        self,
        *,
        die_on_term: bool | None = None,
        lazy_apps: bool | None = None,
        chdir: str | None = None,
        strict: bool | None = None,
        vacuum: bool | None = None,
    ) -> Section:
        """``die_on_term``: SIGTERM stops uWSGI 2.0 (instead of reloading
        it); ``lazy_apps``: as ``workers.set_basic_params(lazy_apps=...)``;
        ``chdir``: directory to change to before loading apps; ``strict``:
        refuse unknown options; ``vacuum``: remove sockets at exit."""
        options = self._section.options
        options.set("die-on-term", die_on_term)
        options.set("lazy-apps", lazy_apps)
        options.set("chdir", chdir)
        options.set("strict", strict)
        options.set("vacuum", vacuum)
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
        python_home: str | None = None,
        search_path: str | Sequence[str] | None = None,
        import_modules: str | Sequence[str] | None = None,
        shared_import: str | Sequence[str] | None = None,
    ) -> Section:
        """``python_home``: virtualenv (``home``); ``search_path``: added to
        ``sys.path`` (``pythonpath``); ``import_modules`` load in the master
        (and workers); with ``lazy-apps`` mules only get ``shared_import``
        modules. List parameters add to earlier calls."""
        options = self._section.options
        options.set("home", python_home)
        options.extend("pythonpath", _as_list(search_path))
        options.extend("import", _as_list(import_modules))
        options.extend("shared-import", _as_list(shared_import))
        return self._section

    def set_wsgi_params(self, *, module: str | None = None, wsgi_file: str | None = None) -> Section:
        """The WSGI application: ``module="pkg.wsgi:application"`` or a file."""
        self._section.options.set("module", module)
        self._section.options.set("wsgi-file", wsgi_file)
        return self._section


class Networking(Group):
    """``section.networking``."""

    def register_socket(self, address: str, *, http: bool = False) -> Section:
        """A socket the workers serve: uwsgi protocol, or HTTP with ``http``
        (repeatable)."""
        self._section.options.set("http-socket" if http else "socket", address, multi=True)
        return self._section

    def http_socket(self, address: str) -> Section:
        """Shortcut for ``register_socket(address, http=True)``."""
        return self.register_socket(address, http=True)


class Monitoring(Group):
    """``section.monitoring``."""

    def set_stats_params(self, address: str | None = None) -> Section:
        """Serve uWSGI's JSON stats on ``address`` (``127.0.0.1:9191`` or a unix path)."""
        self._section.options.set("stats", address)
        return self._section

    def set_metrics_params(self, *, enable: bool | None = None, store_dir: str | None = None) -> Section:
        """uWSGI metrics subsystem; ``store_dir``: write them as files there."""
        self._section.options.set("enable-metrics", enable)
        self._section.options.set("metrics-dir", store_dir)
        return self._section
