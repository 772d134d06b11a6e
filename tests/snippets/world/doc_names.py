"""Names the documentation uses for the reader's own code (handlers, helpers).

Each is a small real function, so a block that passes one to the API runs
for real; calls are recorded in ``CALLS``. Add a name here only when a
block uses it to stand for "your function".
"""

from __future__ import annotations

from typing import Any

CALLS: list[tuple[str, tuple[Any, ...]]] = []


def _recorder(name: str) -> Any:
    def placeholder(*args: Any, **kwargs: Any) -> None:
        CALLS.append((name, args))

    placeholder.__name__ = placeholder.__qualname__ = name
    placeholder.__module__ = __name__
    return placeholder


cleanup = _recorder("cleanup")
warm_up = _recorder("warm_up")
report = _recorder("report")
poll = _recorder("poll")
reload_flags = _recorder("reload_flags")
update_shared_state = _recorder("update_shared_state")
send_mail = _recorder("send_mail")

def make_my_uwsgiconf_section() -> Any:
    """The reader's uwsgiconf configuration: two mules in farm "reports"."""
    try:
        from uwsgiconf.config import Section
    except ImportError as exc:
        from tests.snippets.worlds import BlockUnavailable

        raise BlockUnavailable("uwsgiconf is not installed here (the uwsgi and pyuwsgi tox envs have it)") from exc
    section = Section()
    section.workers.set_mules_params(mules=2, farms=[section.workers.mule_farm("reports", 2)])
    return section


#: what every Markdown file's namespace starts with
NAMES = {
    name: value
    for name, value in dict(globals()).items()
    if callable(value) and getattr(value, "__module__", None) == __name__ and not name.startswith("_")
}
