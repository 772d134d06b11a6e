"""``Section``: one ``[uwsgi]`` INI section with mules and farms."""

from __future__ import annotations

from pathlib import Path

from ..errors import TopologyError
from ..topology import ENTRY_POINT, TOPOLOGY_ENV, FarmSpec, MuleSpec, Topology, entry_script_path
from ..uwsgi_args import options_from_ini
from .groups import MainProcess, MasterProcess, Monitoring, Networking, Python, Workers
from .options import OptionList, Value, render_ini

#: options owned by the mule layout (rendered from it, read back into it)
LAYOUT_OPTIONS = ("mule", "mules", "farm", "mule-msg-size")


class Section:
    """A uWSGI config section.

    Groups: ``workers`` (processes, mules, farms), ``master_process``,
    ``main_process``, ``python``, ``networking``, ``monitoring``; plus
    :meth:`set_option` and :meth:`set_env` for anything else. Rendering adds
    ``env = UWSGIMULES_TOPOLOGY=...`` so every process knows the exact mule
    layout.
    """

    def __init__(self, name: str = "uwsgi", *, master: bool = True) -> None:
        self.name = name
        self.options = OptionList()
        self.mules: tuple[MuleSpec, ...] = ()
        self.mules_as_count = False
        self.farms: tuple[FarmSpec, ...] = ()
        self.msg_size: int | None = None
        self.recv_size: int | None = None
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
        """Set any uWSGI option (``None`` unsets it). Mule layout options go
        through ``workers.set_mules_params``."""
        if key in LAYOUT_OPTIONS:
            raise TopologyError(f"set {key!r} with section.workers.set_mules_params(...)")
        self.options.set(key, value, multi=multi)
        return self

    def set_env(self, key: str, value: str) -> Section:
        """Set an environment variable in every process (``env = KEY=VALUE``)."""
        if not key or "=" in key:
            raise TopologyError(f"invalid environment variable name {key!r}")
        if key.startswith("UWSGI_"):
            raise TopologyError(f"{key}: uWSGI reads UWSGI_* variables as options; pick another name")
        self.options.set("env", f"{key}={value}", multi=True)
        return self

    # -- layout ------------------------------------------------------------------

    @property
    def lazy_apps(self) -> bool:
        return self.options.get("lazy-apps") == ["true"]

    def topology(self) -> Topology:
        """The mule/farm layout this section renders (validated)."""
        topology = Topology(
            mules=tuple(self._rendered_mule(m) for m in self.mules),
            farms=self.farms,
            msg_size=self.msg_size,
            recv_size=self.recv_size or Topology().recv_size,
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
        layout, then the layout for the runtime."""
        topology = self.topology()
        items = self.options.items()
        if self.mules_as_count and all(m.kind == "signal" for m in topology.mules) and topology.mules:
            items.append(("mules", str(topology.mule_count)))
        else:
            items += [("mule", spec.option_value()) for spec in topology.mules]
        items += [("farm", farm.option_value()) for farm in topology.farms]
        if topology.msg_size:
            items.append(("mule-msg-size", str(topology.msg_size)))
        if topology.mules:
            items.append(("env", f"{TOPOLOGY_ENV}={topology.to_env_value()}"))
        return items

    def as_ini(self) -> str:
        """The section as INI text."""
        return render_ini(self.name, self.items())

    def write_ini(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.as_ini(), encoding="utf-8")
        return path

    def as_args(self) -> list[str]:
        """The section as uWSGI command-line arguments (``true`` flags bare)."""
        return [f"--{key}" if value in ("", "true") else f"--{key}={value}" for key, value in self.items()]

    @classmethod
    def from_ini(cls, path: str | Path, section: str = "uwsgi") -> Section:
        """Read a section back (mules and farms become its layout)."""
        options = options_from_ini(str(path), section)
        result = cls(section, master=False)
        layout = Topology.from_options(options, source=str(path))
        result.mules = layout.mules
        result.farms = layout.farms
        result.msg_size = layout.msg_size
        result.recv_size = layout.recv_size
        result.mules_as_count = any(key == "mules" for key, _ in options) and not any(
            key == "mule" for key, _ in options
        )
        for key, value in options:
            if key in LAYOUT_OPTIONS or (key == "env" and (value or "").startswith(TOPOLOGY_ENV + "=")):
                continue
            result.options.set(key, True if value is None else value, multi=True)
        return result
