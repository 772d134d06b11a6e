"""Read uWSGI options from a command line or an INI file, in order.

Both return ``(key, value)`` pairs (``value`` None for a flag given without
a value), which :meth:`uwsgi_mules.topology.Topology.from_options` turns
into a layout. Used by the real backend (when no rendered config told it
the layout), by ``FakeUwsgi.from_ini`` and by the config layer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from .errors import TopologyError

Option = tuple[str, "str | None"]

#: uWSGI options whose argument is optional: ``--mule`` alone is a signal-only
#: mule; a following word is taken as its value only with ``=``.
OPTIONAL_ARGUMENT = frozenset({"mule", "mule-msg-size"})

#: flags that never take a value on the command line (enough for our needs:
#: anything else followed by a non-option word takes that word as its value)
NO_ARGUMENT = frozenset(
    {
        "master", "die-on-term", "strict", "lazy-apps", "lazy", "enable-threads", "vacuum",
        "need-app", "single-interpreter", "disable-logging", "no-orphans", "thunder-lock",
        "memory-report", "enable-metrics", "honour-stdin", "py-tracebacker", "cheaper-busyness",
    }
)

_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


def options_from_ini_text(text: str, section: str = "uwsgi") -> list[Option]:
    """Options of ``[section]`` in INI text; repeated keys are kept in order.

    Comments are lines starting with ``;`` or ``#``; ``key =`` gives ``""``.
    """
    options: list[Option] = []
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        match = _SECTION.match(stripped)
        if match:
            current = match.group("name").strip()
            continue
        if current != section:
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            options.append((key.strip(), None))
        else:
            options.append((key.strip(), value.strip()))
    return options


def options_from_ini(path: str, section: str = "uwsgi") -> list[Option]:
    """Options of ``[section]`` of an INI file (``path:section`` also works),
    with nested ``ini = other.ini`` options expanded in place."""
    if ":" in os.path.basename(path):
        path, section = path.rsplit(":", 1)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    base = os.path.dirname(os.path.abspath(path))
    return _expand(options_from_ini_text(text, section), base, depth=0)


def options_from_argv(argv: Sequence[str]) -> list[Option]:
    """Options of a uWSGI command line (``uwsgi --mule --farm a:1 ...``).

    Leading words that are not options (the program, a Python launcher and
    its script) are skipped. ``--ini FILE`` is expanded in place.
    """
    options: list[Option] = []
    args = list(argv)
    index = 0
    while index < len(args) and not args[index].startswith("-"):
        index += 1
    while index < len(args):
        word = args[index]
        index += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        key = word.lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
            options.append((key, value))
            continue
        takes_value = key not in NO_ARGUMENT and key not in OPTIONAL_ARGUMENT
        if takes_value and index < len(args) and not args[index].startswith("-"):
            options.append((key, args[index]))
            index += 1
        else:
            options.append((key, None))
    return _expand(options, os.getcwd(), depth=0)


def _expand(options: list[Option], base: str, depth: int) -> list[Option]:
    if depth > 10:
        raise TopologyError("ini files include each other more than 10 levels deep")
    expanded: list[Option] = []
    for key, value in options:
        if key == "ini" and value:
            path = value if os.path.isabs(value) else os.path.join(base, value)
            section = "uwsgi"
            if ":" in os.path.basename(path):
                path, section = path.rsplit(":", 1)
            with open(path, encoding="utf-8") as fh:
                nested = options_from_ini_text(fh.read(), section)
            expanded.extend(_expand(nested, os.path.dirname(os.path.abspath(path)), depth + 1))
        else:
            expanded.append((key, value))
    return expanded
