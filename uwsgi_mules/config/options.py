"""The ordered option list behind a section, and INI rendering."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import TopologyError

Value = str | int | bool | None

#: every option the typed API can render; each is checked against real
#: uWSGI 2.0 (``--strict``) by the real-uWSGI tests
KNOWN_OPTIONS = frozenset(
    {
        "master", "processes", "threads", "enable-threads", "lazy-apps", "die-on-term", "strict",
        "chdir", "pythonpath", "module", "wsgi-file", "import", "shared-import", "socket",
        "http-socket", "env", "mule", "mules", "farm", "touch-mules-reload", "mule-harakiri",
        "mule-reload-mercy", "mule-msg-size", "plugin", "stats", "enable-metrics", "metrics-dir",
        "locks", "spooler", "spooler-frequency", "disable-logging", "vacuum", "need-app",
        "worker-reload-mercy", "reload-mercy", "py-call-osafterfork",
    }
)


class OptionList:
    """Options in the order they were set; repeated keys allowed."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []

    def set(self, key: str, value: Value, *, multi: bool = False) -> None:
        """Set ``key``; ``None`` leaves it unset, ``True`` renders ``true``;
        without ``multi`` an earlier value of the key is replaced."""
        if not key or key != key.strip() or " " in key or key.startswith("-"):
            raise TopologyError(f"invalid option name {key!r}")
        if value is None or value is False:
            if not multi:
                self.remove(key)
            return
        text = "true" if value is True else str(value)
        if "\n" in text:
            raise TopologyError(f"option {key} value must be one line, got {text!r}")
        if not multi:
            for index, (existing, _) in enumerate(self._items):
                if existing == key:
                    self._items[index] = (key, text)
                    return
        self._items.append((key, text))

    def extend(self, key: str, values: Iterable[Value]) -> None:
        for value in values:
            self.set(key, value, multi=True)

    def remove(self, key: str) -> None:
        self._items = [(k, v) for k, v in self._items if k != key]

    def get(self, key: str) -> list[str]:
        return [v for k, v in self._items if k == key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


def render_ini(name: str, items: Iterable[tuple[str, str]]) -> str:
    lines = [f"[{name}]"]
    lines += [f"{key} = {value}" if value != "" else f"{key} =" for key, value in items]
    return "\n".join(lines) + "\n"
