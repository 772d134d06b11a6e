"""Use a real ``uwsgiconf`` ``Section`` with uwsgi-mules.

uwsgiconf (2.4) renders configurations that uWSGI 2.0 does not fully
accept, and it does not tell the runtime the mule layout. This module reads
a uwsgiconf section as uWSGI would (its rendered INI), and:

* :func:`layout_of` returns the validated :class:`~uwsgi_mules.layout.topology.Topology`
  (``FakeUwsgi.from_section(uwsgiconf_section)`` uses it);
* :func:`check` lists what uWSGI 2.0 refuses (``mule-msg-recv-size``: uWSGI
  2.0.31 stops with ``unrecognized option`` under ``--strict``);
* :func:`prepare` fixes the section in place: it moves
  ``mule-msg-recv-size`` into the layout (``uwsgi_mules.mule:run`` reads
  messages that large), adds the layout line
  (``env = UWSGIMULES_TOPOLOGY=...``) and reports what it cannot fix;
* :func:`to_section` converts it into a :class:`uwsgi_mules.config.Section`.

uwsgiconf itself is not imported: any object with uwsgiconf's
``as_configuration()`` works. (uwsgiconf drops a ``None`` entry of
``set_mules_params(mules=[...])``, shifting later mule ids; the layout read
here is the one uWSGI gets.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..errors import TopologyError
from ..layout.topology import DEFAULT_RECV_SIZE, TOPOLOGY_ENV, Topology
from ..layout.uwsgi_args import Option, options_from_ini_text

logger = logging.getLogger("uwsgi_mules")

#: options uwsgiconf 2.4 can render that uWSGI 2.0 does not know, and why
REFUSED_BY_UWSGI_2_0 = {
    "mule-msg-recv-size": "uWSGI 2.0 has no mule-msg-recv-size (--strict stops at it, otherwise it is ignored); "
    "uwsgi-mules carries the value in its layout line, where uwsgi_mules.mule:run reads it",
    "die-on-no-workers": "uWSGI 2.0 has no die-on-no-workers (master_process.set_exit_events(no_workers=...)); "
    "remove it",
}
#: the refused options :func:`prepare` can fix
FIXABLE = frozenset({"mule-msg-recv-size"})


@dataclass(frozen=True)
class Finding:
    """An option of the section that uWSGI 2.0 refuses."""

    option: str
    value: str
    message: str
    fixed: bool = False


def is_uwsgiconf_section(section: object) -> bool:
    """Whether ``section`` looks like a uwsgiconf ``Section``."""
    return callable(getattr(section, "as_configuration", None)) and hasattr(section, "_opts")


def options_of(section: Any) -> list[Option]:
    """``(key, value)`` pairs of the uwsgiconf section, in the order uWSGI
    reads them from its rendered INI."""
    if not is_uwsgiconf_section(section):
        raise TypeError(f"expected a uwsgiconf Section, got {type(section).__name__}")
    text = section.as_configuration().format(do_print=False, stamp=False, formatter="ini")
    return options_from_ini_text(text, section.name)


def _recv_size(options: list[Option]) -> int | None:
    values = [v for k, v in options if k == "mule-msg-recv-size" and v]
    if not values:
        return None
    try:
        size = int(values[-1])
    except ValueError:
        raise TopologyError(f"mule-msg-recv-size must be a number of bytes, got {values[-1]!r}") from None
    if size < 1:
        raise TopologyError(f"mule-msg-recv-size must be positive, got {size}")
    return size


def layout_of(section: Any) -> Topology:
    """The validated mule/farm layout of a uwsgiconf section (or of a
    :class:`uwsgi_mules.config.Section`). ``msg_buffer_recv`` becomes the
    layout's receive size.

    :raises TopologyError: a layout real uWSGI would refuse (a farm naming
        a mule that does not exist, a farm defined twice...).
    """
    if not is_uwsgiconf_section(section):
        return section.topology()
    options = options_of(section)
    topology = Topology.from_options(options, source=f"uwsgiconf section [{section.name}]")
    recv_size = _recv_size(options)
    if recv_size is not None:
        topology = Topology.build(
            topology.mules, topology.farms, msg_size=topology.msg_size, recv_size=recv_size, source=topology.source
        )
    return topology


def check(section: Any) -> list[Finding]:
    """What uWSGI 2.0 would refuse in the uwsgiconf section (nothing changes)."""
    return [
        Finding(key, value or "", REFUSED_BY_UWSGI_2_0[key])
        for key, value in options_of(section)
        if key in REFUSED_BY_UWSGI_2_0
    ]


def prepare(section: Any) -> list[Finding]:
    """Make a uwsgiconf section ready for uwsgi-mules on uWSGI 2.0, in
    place: validate the layout, move ``mule-msg-recv-size`` into it, add
    (or replace) the ``env = UWSGIMULES_TOPOLOGY=...`` line. Returns every
    finding; those not fixed (``fixed=False``) are also logged as warnings.

    :raises TopologyError: the layout is invalid.
    """
    topology = layout_of(section)
    findings = []
    opts = section._opts  # uwsgiconf keeps options in this dict, keyed like their names
    for finding in check(section):
        if finding.option in FIXABLE:
            opts.pop(finding.option, None)
            findings.append(Finding(finding.option, finding.value, finding.message, fixed=True))
        else:
            logger.warning("uwsgiconf section [%s]: %s = %s: %s", section.name, finding.option, finding.value,
                           finding.message)
            findings.append(finding)
    env = [v for v in opts.get("env", []) if not str(v).startswith(TOPOLOGY_ENV + "=")]
    if env:
        opts["env"] = env
    else:
        opts.pop("env", None)
    if topology.mules:
        section.env(TOPOLOGY_ENV, topology.to_env_value())
    return findings


def to_section(section: Any) -> Any:
    """A :class:`uwsgi_mules.config.Section` with the options and layout of
    the uwsgiconf section (``mule-msg-recv-size`` moved into the layout;
    other options uWSGI 2.0 refuses raise)."""
    from .section import MuleLayout, Section

    options = options_of(section)
    refused = [k for k, _ in options if k in REFUSED_BY_UWSGI_2_0 and k not in FIXABLE]
    if refused:
        raise TopologyError(f"uwsgiconf section [{section.name}] uses {', '.join(refused)}: "
                            + "; ".join(REFUSED_BY_UWSGI_2_0[k] for k in refused))
    topology = layout_of(section)
    result = Section.from_options(
        [(k, v) for k, v in options if k != "mule-msg-recv-size"], name=section.name,
        source=f"uwsgiconf section [{section.name}]",
    )
    result.layout = MuleLayout(
        mules=topology.mules, farms=topology.farms, msg_size=topology.msg_size,
        recv_size=topology.recv_size if topology.recv_size != DEFAULT_RECV_SIZE else None,
        mules_as_count=result.layout.mules_as_count,
    )
    return result


__all__ = ["FIXABLE", "REFUSED_BY_UWSGI_2_0", "Finding", "check", "is_uwsgiconf_section", "layout_of",
           "options_of", "prepare", "to_section"]
