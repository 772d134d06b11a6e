"""How the previous process of a mule ended, for what uWSGI drops silently.

uWSGI drops what is queued for a mule when the instance re-executes (a full
reload) or exits, and a mule saves it first in its stop path. A mule that
dies during a reload or a stop before it could save (it was killed, or its
task killed it, before its stop handler ran) leaves nothing to replay and no
trace, unless the C plugin's master saved the queues. So each programmed
mule keeps a marker in the runtime directory: the instance generation it
serves (the master's pid and uWSGI's ``UWSGI_RELOADS`` counter, bumped by
every re-execution) and how far it got: serving, its queue saved early (told
to stop during a task), or its stop path ended. The next process of the mule
in a later generation reads it and says what may have been dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

#: states of the marker
SERVING, SAVED_EARLY, ENDED = "serving", "saved-early", "ended"
_LONGEST = 200


def generation(getenv: Callable[[str], str | None]) -> str:
    """This instance generation: the master's pid (a mule's parent) and uWSGI's reload counter."""
    return f"{os.getppid()}:{getenv('UWSGI_RELOADS') or '0'}"


def marker_path(runtime_dir: Path, mule_id: int) -> Path:
    return runtime_dir / f"mule{mule_id}.ending"


class EndingMarker:
    """The marker of one mule (no file when there is no runtime directory);
    a marker that cannot be read or written is ignored: it only adds log lines."""

    def __init__(self, path: Path | None, current: str) -> None:
        self.path = path
        self.current = current

    def previous(self) -> tuple[str, str] | None:
        """``(generation, state)`` the previous process of this mule left, or None."""
        if self.path is None:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            words = os.read(fd, _LONGEST).decode("ascii", "replace").split()
        except OSError:
            return None
        finally:
            os.close(fd)
        return (words[0], words[1]) if len(words) == 2 else None

    def mark(self, state: str) -> None:
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            os.write(fd, f"{self.current} {state}\n".encode("ascii"))
        except OSError:
            pass
        finally:
            os.close(fd)

    def what_was_dropped(self, mule_id: int, plugin: bool) -> str | None:
        """The log line about what uWSGI may have dropped when the previous
        process of mule ``mule_id`` ended in an earlier generation, or None."""
        found = self.previous()
        if found is None or found[0] == self.current or found[1] == ENDED:
            return None
        kept = ("the C plugin's master saved what was left in the queues at that reload or stop "
                "(its 'mules_plugin: saved' line)" if plugin else
                "uWSGI dropped it at that reload or stop; the C plugin's master saves it (docs/delivery.md, "
                "\"A mule that dies during a reload\")")
        if found[1] == SAVED_EARLY:
            return (f"uwsgi-mules: WARNING mule {mule_id} of the previous generation saved its queue when told to "
                    f"stop during a task, then died before it ended: offloads sent to it after that: {kept}")
        return (f"uwsgi-mules: ERROR mule {mule_id} of the previous generation died during the reload or stop "
                f"before it could save its queue: what was queued for it then: {kept}")
