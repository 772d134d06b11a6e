"""Worker processes, mules and farms (``section.workers``), as uwsgiconf has them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import TopologyError
from ..layout.topology import FarmSpec, MuleSpec, check_farm_name
from .options import OptionList

if TYPE_CHECKING:
    from .section import Section

#: one entry of ``set_mules_params(mules=[...])``
MuleEntry = str | bool | None


class MuleFarm:
    """A farm: a name and either a mule count (the next free mule numbers
    are allocated, in farm order) or a list of mule ids. Never modified by
    ``set_mules_params`` (uwsgiconf's is)."""

    def __init__(self, name: str, mule_numbers: int | str | Sequence[int]) -> None:
        if not isinstance(name, str) or not name or ":" in name or name != name.strip():
            raise TopologyError(f"invalid farm name {name!r}")
        check_farm_name(name)
        self.name = name
        self.mule_numbers = mule_numbers

    def __str__(self) -> str:
        numbers = self.mule_numbers
        if isinstance(numbers, (int, str)):
            return f"{self.name}:{numbers}"
        return f"{self.name}:{','.join(map(str, numbers))}"

    def __repr__(self) -> str:
        return f"MuleFarm({self.name!r}, {self.mule_numbers!r})"


def _farm_specs(farms: Sequence[MuleFarm]) -> list[FarmSpec]:
    """The farms of ``set_mules_params``: a count takes the next free mule
    numbers (1, 2... across farms), a list names the mules."""
    farm_specs: list[FarmSpec] = []
    next_mule = 1
    seen: set[str] = set()
    for farm in farms:
        if not isinstance(farm, MuleFarm):
            raise TopologyError(f"farms must be mule_farm(...) objects, not {farm!r}")
        if farm.name in seen:
            raise TopologyError(f"farm {farm.name!r} is defined twice")
        seen.add(farm.name)
        ids = _farm_ids(farm, next_mule)
        if not isinstance(farm.mule_numbers, (list, tuple)):
            next_mule = ids[-1] + 1  # a count: the next farm starts after it
        farm_specs.append(FarmSpec(farm.name, ids))
    return farm_specs


def _farm_ids(farm: MuleFarm, next_mule: int) -> tuple[int, ...]:
    numbers = farm.mule_numbers
    if isinstance(numbers, str) and numbers.isdigit():
        numbers = int(numbers)
    if isinstance(numbers, bool) or not isinstance(numbers, (int, list, tuple)):
        raise TopologyError(f"farm {farm.name!r}: mule_numbers must be a count or a list of ids, not {numbers!r}")
    if isinstance(numbers, int):
        if numbers < 1:
            raise TopologyError(f"farm {farm.name!r} needs at least one mule, got {numbers}")
        return tuple(range(next_mule, next_mule + numbers))
    ids: list[int] = []
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, str)) or not str(number).strip().isdigit():
            raise TopologyError(f"farm {farm.name!r}: invalid mule id {number!r}")
        ids.append(int(number))
    return tuple(ids)


def _mule_specs(mules: int | Sequence[MuleEntry]) -> tuple[MuleSpec, ...]:
    if isinstance(mules, bool) or not isinstance(mules, (int, list, tuple)):
        raise TopologyError(f"mules must be a count or a list of mule programs, not {mules!r}")
    if isinstance(mules, int):
        if mules < 0:
            raise TopologyError(f"mule count must be >= 0, got {mules}")
        return tuple(MuleSpec() for _ in range(mules))
    specs = []
    for entry in mules:
        if entry is None or entry is True or entry == "":
            specs.append(MuleSpec())
        elif isinstance(entry, str):
            specs.append(MuleSpec(entry))
        else:
            raise TopologyError(f"invalid mule entry {entry!r}: use None/True (signal-only) or a program string")
    return tuple(specs)


def _as_list(values: str | Sequence[str] | None) -> list[str]:
    if values is None:
        return []
    return [values] if isinstance(values, str) else [str(v) for v in values]


def _non_negative(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TopologyError(f"{name} must be an integer >= 0, got {value!r}")
    return value


class _KeepUnset:
    """Option setting with uwsgiconf's rule: None leaves an option as it is."""

    def __init__(self, options: OptionList) -> None:
        self._options = options

    def set(self, key: str, value: str | int | bool | None) -> None:
        if value is not None:
            self._options.set(key, value)

    def extend(self, key: str, values: list[str]) -> None:
        self._options.extend(key, values)


class Workers:
    """Worker processes and mules."""

    mule_farm = MuleFarm

    def __init__(self, section: Section) -> None:
        self._section = section

    def set_basic_params(
        self,
        *,
        count: int | None = None,
        touch_reload: str | Sequence[str] | None = None,
        touch_chain_reload: str | Sequence[str] | None = None,
        zombie_reaper: bool | None = None,
        limit_addr_space: int | None = None,
        limit_count: int | None = None,
        cpu_affinity: int | None = None,
        threads: int | None = None,
        enable_threads: bool | None = None,
        lazy_apps: bool | None = None,
    ) -> Section:
        """uwsgiconf's parameters: ``count`` worker processes (``processes``;
        unlike uwsgiconf, None leaves uWSGI's default of 1 instead of one per
        CPU core); ``touch_reload`` / ``touch_chain_reload``: file(s) whose
        touch reloads the workers (all at once / one at a time);
        ``zombie_reaper`` (``reaper``); ``limit_addr_space`` in MB
        (``limit-as``); ``limit_count``: process limit (``limit-nproc``);
        ``cpu_affinity``: cores per worker.

        uwsgi-mules extras: ``threads`` per worker and ``enable_threads`` (as
        :meth:`set_thread_params`); ``lazy_apps``: load the app in each
        worker instead of the master (mules then only get ``shared_import``
        modules)."""
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise TopologyError(f"worker count must be an integer >= 1, got {count!r}")
        options = _KeepUnset(self._section.options)
        options.set("processes", count)
        options.extend("touch-workers-reload", _as_list(touch_reload))
        options.extend("touch-chain-reload", _as_list(touch_chain_reload))
        options.set("reaper", zombie_reaper)
        options.set("limit-as", _non_negative("limit_addr_space", limit_addr_space))
        options.set("limit-nproc", _non_negative("limit_count", limit_count))
        options.set("cpu-affinity", _non_negative("cpu_affinity", cpu_affinity))
        options.set("threads", _non_negative("threads", threads) or None)
        options.set("enable-threads", enable_threads)
        options.set("lazy-apps", lazy_apps)
        return self._section

    def set_thread_params(
        self,
        *,
        enable: bool | None = None,
        count: int | None = None,
        count_offload: int | None = None,
        stack_size: int | None = None,
        no_wait: bool | None = None,
    ) -> Section:
        """As in uwsgiconf: ``enable`` threads in Python (``enable-threads``;
        offloaded work in threads needs it); ``count`` threads per worker;
        ``count_offload``: offload threads; ``stack_size`` (KB);
        ``no_wait``: do not wait for threads at reload."""
        options = _KeepUnset(self._section.options)
        options.set("enable-threads", enable)
        options.set("no-threads-wait", no_wait)
        options.set("threads", _non_negative("count", count) or None)
        options.set("offload-threads", _non_negative("count_offload", count_offload) or None)
        options.set("threads-stacksize", _non_negative("stack_size", stack_size) or None)
        return self._section

    def set_mules_params(
        self,
        mules: int | Sequence[MuleEntry] | None = None,
        *,
        touch_reload: str | Sequence[str] | None = None,
        harakiri_timeout: int | None = None,
        farms: Sequence[MuleFarm] | MuleFarm | None = None,
        reload_mercy: int | None = None,
        msg_buffer: int | None = None,
        msg_buffer_recv: int | None = None,
    ) -> Section:
        """Mules, farms and their queues, with uwsgiconf's parameters.

        ``mules``: a count, or a list of mule programs in mule-id order:
        ``None``, ``""`` or ``True`` for a signal-only mule (uwsgiconf drops
        ``None``, shifting later ids; here it keeps its place),
        ``"path.py"`` or ``"pkg.mod:callable"``.
        ``farms``: ``mule_farm(name, count_or_ids)``; a count takes the next
        free mule numbers (1, 2... across farms); without ``mules`` the sum
        of the farm sizes is the mule count (as uwsgiconf does).
        ``touch_reload``: file(s) whose touch reloads the mules.
        ``harakiri_timeout``/``reload_mercy``: seconds (``mule-harakiri``,
        ``mule-reload-mercy``).
        ``msg_buffer``: queue socket buffer (``mule-msg-size``; 0 = default).
        ``msg_buffer_recv``: how much ``uwsgi_mules.mule:run`` mules read at
        once (0 = default). uWSGI 2.0 has no option for it (uwsgiconf
        renders ``mule-msg-recv-size``, which ``--strict`` refuses); it
        travels in the rendered layout instead.

        Each call sets the whole layout (mules and farms) again.
        """
        farm_specs = _farm_specs([farms] if isinstance(farms, MuleFarm) else farms or ())
        if mules is None and farm_specs:
            mules = sum(len(f.mules) for f in farm_specs)
        section = self._section
        if mules is not None:
            section.layout.mules = _mule_specs(mules)
            section.layout.mules_as_count = isinstance(mules, int)
        section.layout.farms = tuple(farm_specs)
        section.layout.msg_size = _non_negative("msg_buffer", msg_buffer) or None
        section.layout.recv_size = _non_negative("msg_buffer_recv", msg_buffer_recv) or None
        if isinstance(touch_reload, str):
            touch_reload = [touch_reload]
        section.options.remove("touch-mules-reload")
        section.options.extend("touch-mules-reload", touch_reload or ())
        section.options.set("mule-harakiri", _non_negative("harakiri_timeout", harakiri_timeout))
        section.options.set("mule-reload-mercy", _non_negative("reload_mercy", reload_mercy))
        section.topology()  # validate now, not at render time
        return section
