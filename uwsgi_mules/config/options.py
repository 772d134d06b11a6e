"""The ordered option list behind a section, and the options the API emits."""

from __future__ import annotations

from collections.abc import Iterable

from .ini import check_option

Value = str | int | bool | None

#: every option name the typed API can render; the real-uWSGI tests boot a
#: config using each of them with ``--strict`` (uWSGI refuses unknown ones)
KNOWN_OPTIONS = frozenset(
    {
        "master", "processes", "threads", "enable-threads", "lazy-apps", "die-on-term", "strict",
        "chdir", "home", "pythonpath", "module", "wsgi-file", "import", "shared-import", "socket",
        "http-socket", "env", "mule", "mules", "farm", "touch-mules-reload", "mule-harakiri",
        "mule-reload-mercy", "mule-msg-size", "plugin", "stats", "enable-metrics", "metrics-dir",
        "vacuum",
        # the uwsgiconf parameters of the same methods
        "touch-workers-reload", "touch-chain-reload", "reaper", "limit-as", "limit-nproc", "cpu-affinity",
        "offload-threads", "threads-stacksize", "no-threads-wait", "procname-master", "no-orphans",
        "master-as-root", "check-interval", "master-fifo", "touch-reload", "prio", "binary-path", "honour-stdin",
        "chdir2", "py-program-name", "py-tracebacker", "reload-os-env", "optimize", "plugins-dir", "callable",
        "wsgi-env-behaviour", "spooler-import", "stats-http", "stats-minified", "stats-no-cores",
        "stats-no-metrics", "stats-pusher-default-freq", "metrics-dir-restore", "metrics-no-cores",
    }
)


def option_text(key: str, value: str | int | bool) -> str:
    """``True`` -> ``"true"``, numbers -> digits, strings as they are (checked)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"option {key}: expected str, int or bool, got {type(value).__name__}")
    check_option(key, text)
    return text


class OptionList:
    """Options in the order they were set; repeated keys allowed."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []

    def set(self, key: str, value: Value, *, multi: bool = False) -> None:
        """Set ``key``; ``None`` (or ``False``) unsets it, ``True`` renders
        ``true``; without ``multi`` an earlier value of the key is replaced
        in place, with ``multi`` the value is appended."""
        if value is None or value is False:
            check_option(key, "")
            if not multi:
                self.remove(key)
            return
        text = option_text(key, value)
        if not multi:
            for index, (existing, _) in enumerate(self._items):
                if existing == key:
                    self._items[index] = (key, text)
                    self._items = self._items[: index + 1] + [
                        item for item in self._items[index + 1:] if item[0] != key
                    ]
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
