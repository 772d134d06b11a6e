"""INI text for uWSGI: rendering with the escaping uWSGI needs, and reading.

uWSGI reads a value literally except for: ``%X`` magic variables (applied
to the whole file: ``%%`` is the only way to write ``%``), ``$(VAR)``,
``@(file)`` and ``%(option)`` references (applied to every option, from the
command line too), and surrounding whitespace (stripped). Rendered values
are therefore checked (:func:`check_option`) and ``%`` is doubled, so what
a process sees is exactly the value that was set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import TopologyError
from ..layout.uwsgi_args import Option, options_from_ini, options_from_ini_text

__all__ = ["check_option", "read_ini", "read_ini_text", "render_ini"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SECTION = re.compile(r"[^\[\]\s]+\Z")
_REFERENCES = ("$(", "@(", "%(")


def check_option(key: str, value: str) -> None:
    """Raise :class:`TopologyError` unless uWSGI would read ``key = value``
    back unchanged."""
    if not _KEY.match(key):
        raise TopologyError(f"invalid option name {key!r}")
    if "\n" in value or "\r" in value or "\0" in value:
        raise TopologyError(f"option {key}: the value must be one line, got {value!r}")
    if value != value.strip(" \t"):
        raise TopologyError(f"option {key}: uWSGI strips surrounding whitespace from {value!r}")
    for marker in _REFERENCES:
        if marker in value:
            raise TopologyError(
                f"option {key}: uWSGI expands {marker}...) in {value!r}; the config layer only "
                "renders literal values"
            )


def check_section_name(name: str) -> None:
    if not _SECTION.match(name):
        raise TopologyError(f"invalid section name {name!r}")


def render_ini(name: str, items: Iterable[tuple[str, str]]) -> str:
    """``[name]`` and one ``key = value`` line per item, in order (repeated
    keys stay repeated; ``%`` is written ``%%``)."""
    check_section_name(name)
    lines = [f"[{name}]"]
    for key, value in items:
        check_option(key, value)
        lines.append(f"{key} = {value.replace('%', '%%')}" if value else f"{key} =")
    return "\n".join(lines) + "\n"


def read_ini_text(text: str, section: str = "uwsgi") -> list[Option]:
    """``(key, value)`` pairs of ``[section]`` as uWSGI reads them: repeated
    keys kept in order, comment lines skipped, ``key =`` and a bare ``key``
    give ``""``, ``%%`` gives ``%``."""
    return options_from_ini_text(text, section)


def read_ini(path: str | Path, section: str = "uwsgi") -> list[Option]:
    """Like :func:`read_ini_text` for a file, with ``%d``/``%n``... and
    nested ``ini``/``include`` options expanded."""
    return options_from_ini(str(path), section)
