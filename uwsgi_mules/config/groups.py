"""Option groups of a section (names follow uwsgiconf where it is cheap)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import TopologyError
from ..topology import FarmSpec, MuleSpec

if TYPE_CHECKING:
    from .section import Section

MuleEntry = str | bool | None


class MuleFarm:
    """A farm: a name and a mule count (allocated in order) or mule ids."""

    def __init__(self, name: str, mule_numbers: int | str | Sequence[int]) -> None:
        if not name or ":" in name:
            raise TopologyError(f"invalid farm name {name!r}")
        self.name = name
        self.mule_numbers = mule_numbers

    def __str__(self) -> str:
        numbers = self.mule_numbers
        if isinstance(numbers, (int, str)):
            return f"{self.name}:{numbers}"
        return f"{self.name}:{','.join(map(str, numbers))}"

    def __repr__(self) -> str:
        return f"MuleFarm({self.name!r}, {self.mule_numbers!r})"


class Group:
    def __init__(self, section: Section) -> None:
        self._section = section

    def _set(self, key: str, value: object, *, multi: bool = False) -> None:
        self._section.set_option(key, value, multi=multi)  # type: ignore[arg-type]


class Workers(Group):
    """Worker processes and mules."""

    mule_farm = MuleFarm

    def set_basic_params(
        self, *, count: int | None = None, threads: int | None = None,
        enable_threads: bool | None = None, lazy_apps: bool | None = None,
    ) -> Section:
        """``count``: worker processes; ``lazy_apps``: load the app in each
        worker instead of the master (mules then need ``shared-import``)."""
        if count is not None and count < 1:
            raise TopologyError(f"worker count must be >= 1, got {count}")
        self._set("processes", count)
        self._set("threads", threads)
        self._set("enable-threads", enable_threads)
        self._set("lazy-apps", lazy_apps)
        return self._section

    def set_mules_params(
        self,
        mules: int | Sequence[MuleEntry] | None = None,
        *,
        touch_reload: str | Sequence[str] | None = None,
        harakiri_timeout: int | None = None,
        farms: Sequence[MuleFarm] | None = None,
        reload_mercy: int | None = None,
        msg_buffer: int | None = None,
        msg_buffer_recv: int | None = None,
    ) -> Section:
        """Mules, farms and their queues, as ``uwsgiconf`` accepts them.

        ``mules``: a count, or a list of mule programs (``None``, ``""`` or
        ``True`` for signal-only, ``"path.py"``, ``"pkg.mod:callable"``).
        ``farms``: ``mule_farm(name, count_or_ids)``; counts take the next
        free mule numbers, and without ``mules`` the farm total is used.
        ``msg_buffer``: the queues' socket buffer (``mule-msg-size``).
        ``msg_buffer_recv``: how much mules running ``uwsgi_mules.mule:run``
        read at once (uWSGI 2.0 has no option for it; uwsgiconf renders one
        that uWSGI refuses, here it travels in the rendered layout).
        """
        farm_specs: list[FarmSpec] = []
        next_mule = 1
        for farm in farms or ():
            numbers = farm.mule_numbers
            if isinstance(numbers, str) and numbers.isdigit():
                numbers = int(numbers)
            if isinstance(numbers, bool) or not isinstance(numbers, (int, list, tuple)):
                raise TopologyError(f"farm {farm.name!r}: mule_numbers must be a count or ids, not {numbers!r}")
            if isinstance(numbers, int):
                if numbers < 1:
                    raise TopologyError(f"farm {farm.name!r} needs at least one mule")
                ids = tuple(range(next_mule, next_mule + numbers))
                next_mule = ids[-1] + 1
            else:
                ids = tuple(int(n) for n in numbers)
            farm_specs.append(FarmSpec(farm.name, ids))
        if mules is None and farm_specs:
            mules = sum(len(f.mules) for f in farm_specs)
        if mules is not None:
            if isinstance(mules, bool) or not isinstance(mules, (int, list, tuple)):
                raise TopologyError(f"mules must be a count or a list of mule programs, not {mules!r}")
            if isinstance(mules, int):
                if mules < 0:
                    raise TopologyError(f"mule count must be >= 0, got {mules}")
                specs = tuple(MuleSpec() for _ in range(mules))
            else:
                specs = tuple(MuleSpec(None if m is True or not m else str(m)) for m in mules)
            self._section.mules = specs
            self._section.mules_as_count = isinstance(mules, int)
        self._section.farms = tuple(farm_specs)
        if isinstance(touch_reload, str):
            touch_reload = [touch_reload]
        self._section.options.remove("touch-mules-reload")
        self._section.options.extend("touch-mules-reload", touch_reload or ())
        self._set("mule-harakiri", harakiri_timeout)
        self._set("mule-reload-mercy", reload_mercy)
        if msg_buffer is not None and msg_buffer < 1:
            raise TopologyError("msg_buffer must be positive")
        if msg_buffer_recv is not None and msg_buffer_recv < 1:
            raise TopologyError("msg_buffer_recv must be positive")
        self._section.msg_size = msg_buffer
        self._section.recv_size = msg_buffer_recv
        self._section.topology()  # validate now, not at render time
        return self._section


class MasterProcess(Group):
    def set_basic_params(self, *, enable: bool | None = None) -> Section:
        """``enable``: run a master process (mules need it)."""
        self._set("master", enable)
        return self._section


class MainProcess(Group):
    def set_basic_params(
        self, *, die_on_term: bool | None = None, chdir: str | None = None,
        strict: bool | None = None, vacuum: bool | None = None,
    ) -> Section:
        """``die_on_term``: SIGTERM stops uWSGI 2.0 (instead of reloading it)."""
        self._set("die-on-term", die_on_term)
        self._set("chdir", chdir)
        self._set("strict", strict)
        self._set("vacuum", vacuum)
        return self._section

    def load_plugin(self, path: str) -> Section:
        """Load an external uWSGI plugin (``plugin = path``)."""
        self._set("plugin", path, multi=True)
        return self._section


class Python(Group):
    def set_basic_params(
        self, *, search_path: str | Sequence[str] | None = None,
        import_modules: str | Sequence[str] | None = None,
        shared_import: str | Sequence[str] | None = None,
    ) -> Section:
        """``import_modules`` load in the master (and workers); with
        ``lazy-apps`` mules only get ``shared_import`` modules."""
        for key, values in (("pythonpath", search_path), ("import", import_modules), ("shared-import", shared_import)):
            if isinstance(values, str):
                values = [values]
            self._section.options.extend(key, values or ())
        return self._section

    def set_wsgi_params(self, *, module: str | None = None, wsgi_file: str | None = None) -> Section:
        """The WSGI application: ``module = pkg.wsgi:application`` or a file."""
        self._set("module", module)
        self._set("wsgi-file", wsgi_file)
        return self._section


class Networking(Group):
    def register_socket(self, address: str, *, http: bool = False) -> Section:
        """A socket the workers serve: uwsgi protocol, or HTTP with ``http``."""
        self._set("http-socket" if http else "socket", address, multi=True)
        return self._section


class Monitoring(Group):
    def set_stats_params(self, address: str | None = None) -> Section:
        """Serve uWSGI's JSON stats on ``address`` (``127.0.0.1:9191`` or a unix path)."""
        self._set("stats", address)
        return self._section

    def set_metrics_params(self, *, enable: bool | None = None, store_dir: str | None = None) -> Section:
        self._set("enable-metrics", enable)
        self._set("metrics-dir", store_dir)
        return self._section
