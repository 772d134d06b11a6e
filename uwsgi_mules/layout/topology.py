"""The mule and farm layout of a uWSGI instance, independent of any backend.

A :class:`Topology` is what ``--mule``, ``--mules``, ``--farm`` and
``--mule-msg-size`` describe. The config layer renders it to INI, the fake
backend is built from it, and the real backend reads it back at run time
(from the ``UWSGIMULES_TOPOLOGY`` environment variable that rendered
configs set, or by parsing uWSGI's own options).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TopologyError
from .msgpipe import LINUX_DEFAULT_WMEM, max_message, send_buffer

#: Environment variable through which a rendered config tells every uWSGI
#: process its exact layout (uWSGI's ``uwsgi.opt`` keeps only the last value
#: of a repeated option on Python 3, so mules and farms cannot be read there).
#: It must not start with ``UWSGI_``: uWSGI reads such variables as options
#: (``--strict`` then refuses them, e.g. after a graceful reload).
TOPOLOGY_ENV = "UWSGIMULES_TOPOLOGY"

#: Bytes a receiver reads at once unless told otherwise (uWSGI's default,
#: and the fixed buffer of signal-only mules).
DEFAULT_RECV_SIZE = 65536

#: Linux default socket send buffer (``net.core.wmem_default``); the model
#: itself reads the host's value (:mod:`uwsgi_mules.layout.msgpipe`).
DEFAULT_SOCKET_BUFFER = LINUX_DEFAULT_WMEM

#: Bytes of a farm name uWSGI keeps (``snprintf(farm.name, 0xff, ...)`` in
#: ``core/mule.c``); sends name the farm in full, so a longer one never matches.
MAX_FARM_NAME_BYTES = 254

#: the ``mule`` option value of uwsgi-mules' ready programmed-mule entry point
ENTRY_POINT = "uwsgi_mules.mule:run"

#: file name of the entry point's script form (for ``lazy-apps``)
ENTRY_SCRIPT_NAME = "mule_script.py"


_LAYOUT_KEYS = frozenset({"mule", "mules", "farm", "mule-msg-size"})


def entry_script_path() -> str:
    """Path of the script form of :data:`ENTRY_POINT` in this installation."""
    return str(Path(__file__).parent.parent / ENTRY_SCRIPT_NAME)  # uwsgi_mules/mule_script.py


def is_entry_script(program: str) -> bool:
    """Whether ``program`` is uwsgi-mules' own mule script."""
    path = Path(program)
    return path.name == ENTRY_SCRIPT_NAME and path.parent.name == "uwsgi_mules"


@dataclass(frozen=True)
class MuleSpec:
    """One ``--mule`` option: signal-only (``program=None``), a ``.py`` script
    or a ``package.module:callable`` entry point."""

    program: str | None = None

    @property
    def kind(self) -> str:
        """``"signal"``, ``"script"`` or ``"callable"``."""
        if not self.program:
            return "signal"
        if self.program.endswith(".py"):
            return "script"
        if ":" in self.program:
            return "callable"
        raise TopologyError(
            f"invalid mule program {self.program!r}: expected a path ending in "
            "'.py' or 'package.module:callable' (uWSGI ignores anything else)"
        )

    def option_value(self) -> str:
        """The value of the ``mule`` option (empty for signal-only)."""
        return self.program or ""


@dataclass(frozen=True)
class FarmSpec:
    """One ``--farm name:1,2`` option."""

    name: str
    mules: tuple[int, ...]

    def option_value(self) -> str:
        return f"{self.name}:{','.join(str(m) for m in self.mules)}"


@dataclass(frozen=True)
class Topology:
    """Mules, farms and queue sizes of one uWSGI instance."""

    mules: tuple[MuleSpec, ...] = ()
    farms: tuple[FarmSpec, ...] = ()
    #: value of ``--mule-msg-size`` (0/None: kernel default socket buffer)
    msg_size: int | None = None
    #: bytes the uwsgi-mules mule loop reads at once
    recv_size: int = DEFAULT_RECV_SIZE
    #: where this topology came from (for error messages)
    source: str = field(default="", compare=False)

    # -- construction -----------------------------------------------------

    @classmethod
    def build(
        cls,
        mules: int | Sequence[str | MuleSpec | None] = 0,
        farms: Mapping[str, Sequence[int]] | Iterable[FarmSpec] | None = None,
        *,
        msg_size: int | None = None,
        recv_size: int | None = None,
        source: str = "",
    ) -> Topology:
        """Build and validate a topology from a mule count or a list of mule
        programs (``None`` or ``""`` for signal-only) and ``{farm: [ids]}``."""
        if isinstance(mules, bool) or not isinstance(mules, (int, list, tuple)):
            raise TopologyError(f"mules must be a count or a list of mule programs, not {mules!r}")
        if isinstance(mules, int):
            if mules < 0:
                raise TopologyError(f"mule count must be >= 0, got {mules}")
            specs = tuple(MuleSpec() for _ in range(mules))
        else:
            specs = tuple(m if isinstance(m, MuleSpec) else MuleSpec(m or None) for m in mules)
        if isinstance(farms, Mapping):
            farm_specs = tuple(FarmSpec(str(name), tuple(ids)) for name, ids in farms.items())
        else:
            farm_specs = tuple(farms or ())
        topology = cls(
            mules=specs,
            farms=farm_specs,
            msg_size=msg_size or None,
            recv_size=recv_size or DEFAULT_RECV_SIZE,
            source=source,
        )
        topology.validate()
        return topology

    @classmethod
    def from_options(cls, options: Iterable[tuple[str, str | None]], *, source: str = "") -> Topology:
        """Read the layout from uWSGI options in order, as ``(key, value)``
        pairs (``--mule`` without a value is ``("mule", None)``)."""
        mules: list[MuleSpec] = []
        farms: list[FarmSpec] = []
        msg_size: int | None = None
        recv_size: int | None = None
        for key, value in options:
            key = key.strip().lstrip("-").replace("_", "-")
            value = value.strip() if isinstance(value, str) else value
            if key == "mule":
                mules.append(MuleSpec(value or None))
            elif key == "mules":
                mules.extend(MuleSpec() for _ in range(_parse_int(key, value)))
            elif key == "farm":
                farms.append(parse_farm(value or ""))
            elif key == "mule-msg-size":
                msg_size = _parse_int(key, value) if value else None
            elif key == "env" and value and value.startswith(TOPOLOGY_ENV + "="):
                recv_size = cls.from_env_value(value.split("=", 1)[1]).recv_size
        topology = cls(tuple(mules), tuple(farms), msg_size, recv_size or DEFAULT_RECV_SIZE, source)
        topology.validate()
        return topology

    def options(self) -> list[tuple[str, str | None]]:
        """The layout as uWSGI options, in order (``mule``, ``farm``, ``mule-msg-size``)."""
        options: list[tuple[str, str | None]] = [("mule", spec.program) for spec in self.mules]
        options += [("farm", farm.option_value()) for farm in self.farms]
        if self.msg_size:
            options.append(("mule-msg-size", str(self.msg_size)))
        return options

    def after_options(self, options: Sequence[tuple[str, str | None]], *, source: str = "") -> Topology:
        """The layout uWSGI builds when ``options`` (e.g. from ``UWSGI_*``
        variables, which uWSGI reads first) come before this layout's own:
        their mules take the first ids, their farms come first."""
        if not any(key.strip().lstrip("-").replace("_", "-") in _LAYOUT_KEYS for key, _ in options):
            return self
        merged = Topology.from_options([*options, *self.options()], source=source or self.source)
        return Topology(merged.mules, merged.farms, merged.msg_size, self.recv_size, merged.source)

    def agrees_with_opt(self, opt: Mapping[str, object]) -> bool:
        """Whether this layout can be the one of a server whose ``uwsgi.opt``
        is ``opt`` (which keeps only the last value of a repeated option):
        at least the mules it proves, the same last farm and message size."""
        from .uwsgi_args import opt_mule_count_bound, opt_value

        if "mule" in opt or "mules" in opt:
            if self.mule_count < opt_mule_count_bound(opt):
                return False
        elif self.mule_count:
            return False
        farm = opt_value(opt, "farm")
        if farm is None:
            if self.farms:
                return False
        else:
            try:
                if not self.farms or parse_farm(farm.strip()) != self.farms[-1]:
                    return False
            except TopologyError:
                return False
        msg_size = opt_value(opt, "mule-msg-size")
        if msg_size is not None:
            try:
                if int(msg_size or 0) != (self.msg_size or 0):
                    return False
            except ValueError:
                return False
        return True

    def validate(self) -> None:
        """Raise :class:`TopologyError` where real uWSGI would refuse to start."""
        for spec in self.mules:
            spec.kind  # noqa: B018 - validates the program string
        seen: set[str] = set()
        for farm in self.farms:
            check_farm_name(farm.name)
            if farm.name in seen:
                raise TopologyError(f"farm {farm.name!r} is defined twice")
            seen.add(farm.name)
            if not farm.mules:
                raise TopologyError(f"farm {farm.name!r} has no mules")
            for mule_id in farm.mules:
                if not 1 <= mule_id <= len(self.mules):
                    raise TopologyError(
                        f"farm {farm.name!r} names mule {mule_id}, but only "
                        f"{len(self.mules)} mule(s) are configured"
                    )
        if self.recv_size < 1:
            raise TopologyError("recv_size must be positive")

    # -- queries ------------------------------------------------------------

    @property
    def mule_count(self) -> int:
        return len(self.mules)

    def mule(self, mule_id: int) -> MuleSpec | None:
        """The spec of mule ``mule_id`` (1-based) or None."""
        if 1 <= mule_id <= len(self.mules):
            return self.mules[mule_id - 1]
        return None

    def farm(self, name: str) -> FarmSpec | None:
        for farm in self.farms:
            if farm.name == name:
                return farm
        return None

    def farms_of(self, mule_id: int) -> tuple[str, ...]:
        """Names of the farms mule ``mule_id`` belongs to, in config order."""
        return tuple(f.name for f in self.farms if mule_id in f.mules)

    @property
    def socket_buffer(self) -> int:
        """The kernel send buffer of every queue, as this host's Linux sizes
        it (``wmem_default``, or ``--mule-msg-size`` capped by ``wmem_max``)."""
        return send_buffer(self.msg_size)

    @property
    def max_send_size(self) -> int:
        """Largest message a queue accepts at all (larger sends return False)."""
        return max_message(self.socket_buffer)

    # -- environment transport -------------------------------------------------

    def to_env_value(self) -> str:
        """Compact JSON for :data:`TOPOLOGY_ENV` (no ``%`` or ``;``, safe in INI)."""
        data = {
            "mules": [m.program or "" for m in self.mules],
            "farms": [[f.name, list(f.mules)] for f in self.farms],
            "msg_size": self.msg_size or 0,
            "recv_size": self.recv_size,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_env_value(cls, value: str) -> Topology:
        try:
            data = json.loads(value)
            return cls.build(
                list(data["mules"]),
                [FarmSpec(name, tuple(ids)) for name, ids in data["farms"]],
                msg_size=data.get("msg_size") or None,
                recv_size=data.get("recv_size") or None,
                source=TOPOLOGY_ENV,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TopologyError(f"cannot read {TOPOLOGY_ENV}={value!r}: {exc}") from exc

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Topology | None:
        value = (os.environ if environ is None else environ).get(TOPOLOGY_ENV)
        return cls.from_env_value(value) if value else None


def check_farm_name(name: str) -> None:
    """Raise :class:`TopologyError` for a farm name uWSGI cannot keep: empty,
    with ``:``, or longer than :data:`MAX_FARM_NAME_BYTES` in UTF-8 (uWSGI
    cuts it and then no send finds the farm)."""
    if not isinstance(name, str) or not name or ":" in name:
        raise TopologyError(f"invalid farm name {name!r}")
    size = len(name.encode(errors="surrogateescape"))
    if size > MAX_FARM_NAME_BYTES:
        raise TopologyError(
            f"farm name of {size} bytes: uWSGI keeps only {MAX_FARM_NAME_BYTES} bytes of a farm "
            f"name, so no message could reach it; use a shorter name ({name[:40]!r}...)"
        )


def parse_farm(value: str) -> FarmSpec:
    """Parse ``name:1,2`` the way uWSGI does."""
    name, sep, ids = value.partition(":")
    if not sep or not name:
        raise TopologyError(f"invalid farm {value!r}: must be in the form name:mule[,muleN]")
    try:
        mules = tuple(int(part) for part in ids.split(",") if part.strip())
    except ValueError as exc:
        raise TopologyError(f"invalid farm {value!r}: mule ids must be integers") from exc
    return FarmSpec(name, mules)


def _parse_int(key: str, value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError as exc:
        raise TopologyError(f"option {key} needs an integer, got {value!r}") from exc
