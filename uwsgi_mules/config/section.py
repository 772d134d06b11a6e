"""``Section``: one uWSGI INI section with mules and farms."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import TopologyError
from ..layout.caches import RESULTS_CACHE, CacheSpec
from ..layout.topology import (
    DEFAULT_RECV_SIZE,
    ENTRY_POINT,
    TOPOLOGY_ENV,
    FarmSpec,
    MuleSpec,
    Topology,
    entry_script_path,
)
from ..layout.uwsgi_args import NO_ARGUMENT, OPTIONAL_ARGUMENT, Option, options_from_ini
from .groups import MainProcess, MasterProcess, Monitoring, Networking, Python
from .ini import check_option, check_section_name, render_ini
from .options import OptionList, Value
from .workers import Workers

#: options owned by the mule layout (rendered from it, read back into it)
LAYOUT_OPTIONS = frozenset({"mule", "mules", "farm", "mule-msg-size"})

_FALSE = frozenset({"false", "off", "no", "0"})


@dataclass
class MuleLayout:
    """What ``workers.set_mules_params`` set (rendered after other options)."""

    mules: tuple[MuleSpec, ...] = ()
    farms: tuple[FarmSpec, ...] = ()
    msg_size: int | None = None
    recv_size: int | None = None
    #: render ``mules = N`` instead of N ``mule =`` lines
    mules_as_count: bool = False


class Section:
    """A uWSGI config section.

    Groups: ``workers`` (processes, mules, farms), ``master_process``,
    ``main_process``, ``python``, ``networking``, ``monitoring``; plus
    :meth:`set_option` and :meth:`set_env` for anything else. Values are
    literal (``%`` is escaped, uWSGI references are refused). Rendering adds
    ``env = UWSGIMULES_TOPOLOGY=...`` when there are mules, so every process
    knows the exact layout.
    """

    def __init__(self, name: str = "uwsgi", *, master: bool = True) -> None:
        check_section_name(name)
        self.name = name
        self.options = OptionList()
        self.layout = MuleLayout()
        self.workers = Workers(self)
        self.master_process = MasterProcess(self)
        self.main_process = MainProcess(self)
        self.python = Python(self)
        self.networking = Networking(self)
        self.monitoring = Monitoring(self)
        if master:
            self.master_process.set_basic_params(enable=True)

    # -- generic ---------------------------------------------------------------

    def set_option(self, key: str, value: Value, *, multi: bool = False) -> Section:
        """Set any uWSGI option (``None`` unsets it, ``True`` is ``true``;
        ``multi`` appends a repeated option). Nothing checks that uWSGI knows
        ``key``: prefer the typed groups. Mule layout options go through
        ``workers.set_mules_params``."""
        if key in LAYOUT_OPTIONS or key.startswith("mule-msg-recv"):
            raise TopologyError(f"set {key!r} with section.workers.set_mules_params(...)")
        self.options.set(key, value, multi=multi)
        return self

    def set_env(self, key: str, value: str) -> Section:
        """Set an environment variable in every process (``env = KEY=VALUE``)."""
        if not key or "=" in key or key != key.strip():
            raise TopologyError(f"invalid environment variable name {key!r}")
        if key.startswith("UWSGI_"):
            raise TopologyError(f"{key}: uWSGI reads UWSGI_* variables as options; pick another name")
        if key == TOPOLOGY_ENV:
            raise TopologyError(f"{TOPOLOGY_ENV} is rendered from the mule layout")
        self.options.set("env", f"{key}={value}", multi=True)
        return self

    # -- caches ------------------------------------------------------------------

    def add_cache(self, name: str, *, items: int, blocksize: int = 65536) -> Section:
        """Add a uWSGI cache (``cache2 = name=...,items=...,blocksize=...``):
        ``items - 1`` values of at most ``blocksize`` bytes each."""
        self.options.set("cache2", CacheSpec(name, items, blocksize).option_value(), multi=True)
        return self

    def set_results_cache(self, *, items: int = 1024, blocksize: int = 65536) -> Section:
        """The cache that holds ``func.submit()`` results of local mules
        (see :mod:`uwsgi_mules.runtime.results`)."""
        return self.add_cache(RESULTS_CACHE, items=items, blocksize=blocksize)

    def caches(self) -> list[CacheSpec]:
        """Every ``cache2`` of this section."""
        return [CacheSpec.parse(value) for value in self.options.get("cache2")]

    # -- layout ------------------------------------------------------------------

    def set_backlog_dir(self, path: str | Path) -> Section:
        """Keep offloads queued at a stop in ``path`` and run them at the next
        start (``env = UWSGIMULES_BACKLOG_DIR=...``; the directory must belong
        to the instance's user and not be writable by others)."""
        return self.set_env("UWSGIMULES_BACKLOG_DIR", str(path))

    def set_chain_reload(self, touch: str | Path) -> Section:
        """Deploy new code without downtime: touching ``touch`` chain-reloads the
        workers one by one (``lazy-apps``, ``touch-chain-reload``) and reloads
        the mules too (``touch-mules-reload``: uWSGI's chain reload leaves mules
        on the old code); queued offloads are kept across it."""
        self.options.set("lazy-apps", "true")
        self.options.extend("touch-chain-reload", [str(touch)])
        self.options.extend("touch-mules-reload", [str(touch)])
        return self

    def set_pyuwsgi_interpreter(self, python: str | Path | None = None) -> Section:
        """This section is started by pyuwsgi (``pip install pyuwsgi``): keep its
        virtualenv across graceful reloads (``binary-path = python``).

        A reload (``touch-reload``, SIGHUP, ``uwsgi.reload()``) re-executes
        uWSGI's binary path, which uWSGI reads from ``/proc/self/exe``: under
        pyuwsgi that is the *base* interpreter the virtualenv's ``python``
        links to, which has no ``pyuwsgi`` and stops the instance. ``python``
        (default: ``sys.executable``, the interpreter rendering the section,
        symlink kept) must be the virtualenv's interpreter, as an absolute
        path that is not resolved. Do not use it for the ``uwsgi`` binary: a
        reload would then start Python with uWSGI's options."""
        path = os.fspath(python if python is not None else sys.executable)
        if not path or not os.path.isabs(path):
            raise TopologyError(f"pyuwsgi interpreter {path!r}: give the virtualenv's python as an absolute path")
        self.options.set("binary-path", path)
        return self

    def set_task_modules(self, *modules: str) -> Section:
        """Modules whose offloaded functions mules register at start, for mules
        that do not load the application (``lazy-apps``): ``UWSGIMULES_TASK_MODULES``."""
        for module in modules:
            if not module or not all(part.isidentifier() for part in module.split(".")):
                raise TopologyError(f"invalid module name {module!r}")
        return self.set_env("UWSGIMULES_TASK_MODULES", ",".join(modules))

    @property
    def lazy_apps(self) -> bool:
        """Whether apps load in the workers (``lazy-apps`` or ``lazy``)."""
        values = self.options.get("lazy-apps") + self.options.get("lazy")
        return bool(values) and values[-1].lower() not in _FALSE

    def topology(self) -> Topology:
        """The mule/farm layout this section renders (validated)."""
        layout = self.layout
        topology = Topology(
            mules=tuple(self._rendered_mule(m) for m in layout.mules),
            farms=layout.farms,
            msg_size=layout.msg_size,
            recv_size=layout.recv_size or DEFAULT_RECV_SIZE,
            source=f"section [{self.name}]",
        )
        topology.validate()
        return topology

    def _rendered_mule(self, spec: MuleSpec) -> MuleSpec:
        # uWSGI 2.0 crashes 'module:callable' mules with lazy-apps; the script form works
        if self.lazy_apps and spec.program == ENTRY_POINT:
            return MuleSpec(entry_script_path())
        return spec

    # -- rendering -----------------------------------------------------------------

    def items(self) -> list[tuple[str, str]]:
        """Every option in render order: general options, then the mule
        layout, then the layout for the runtime (checked)."""
        topology = self.topology()
        items = self.options.items()
        if self.layout.mules_as_count and topology.mules and all(m.kind == "signal" for m in topology.mules):
            items.append(("mules", str(topology.mule_count)))
        else:
            items += [("mule", spec.option_value()) for spec in topology.mules]
        items += [("farm", farm.option_value()) for farm in topology.farms]
        if topology.msg_size:
            items.append(("mule-msg-size", str(topology.msg_size)))
        if topology.mules:
            items.append(("env", f"{TOPOLOGY_ENV}={topology.to_env_value()}"))
        for key, value in items:
            check_option(key, value)
        return items

    def as_ini(self) -> str:
        """The section as INI text."""
        return render_ini(self.name, self.items())

    def write_ini(self, path: str | Path) -> Path:
        """Write :meth:`as_ini` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.as_ini(), encoding="utf-8")
        return path

    def as_args(self) -> list[str]:
        """The section as uWSGI command-line arguments (``--key=value``;
        flags set to ``true`` and an empty ``--mule`` bare)."""
        args = []
        for key, value in self.items():
            if (value == "true" and key in NO_ARGUMENT) or (value == "" and key in OPTIONAL_ARGUMENT):
                args.append(f"--{key}")
            else:
                args.append(f"--{key}={value}")
        return args

    # -- reading -----------------------------------------------------------------------

    @classmethod
    def from_ini(cls, path: str | Path, section: str = "uwsgi") -> Section:
        """Read a section back: mules and farms become its layout, the rest
        its options in order (nested ``ini = ...`` files are inlined)."""
        return cls.from_options(options_from_ini(str(path), section), name=section, source=str(path))

    @classmethod
    def from_options(cls, options: list[Option], *, name: str = "uwsgi", source: str = "") -> Section:
        """A section from ``(key, value)`` pairs (see :mod:`uwsgi_mules.layout.uwsgi_args`)."""
        result = cls(name, master=False)
        layout = Topology.from_options(options, source=source)
        result.layout = MuleLayout(
            mules=layout.mules,
            farms=layout.farms,
            msg_size=layout.msg_size,
            recv_size=layout.recv_size if layout.recv_size != DEFAULT_RECV_SIZE else None,
            mules_as_count=any(k == "mules" for k, _ in options) and not any(k == "mule" for k, _ in options),
        )
        for key, value in options:
            if key in LAYOUT_OPTIONS or (key == "env" and (value or "").startswith(TOPOLOGY_ENV + "=")):
                continue
            result.options.set(key, "" if value is None else value, multi=True)
        return result
