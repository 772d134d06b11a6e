"""File monitors of the fake master (``uwsgi.add_file_monitor``).

Real uWSGI watches the path with inotify and raises the signal on every
change. The fake compares a snapshot of the path (its stat, and for a
directory the stat of each entry) each time it is polled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .clock import MAX_ENTRIES

#: longest path uWSGI accepts (the table keeps 255 bytes with the NUL)
MAX_PATH = 0xFF - 1

Snapshot = tuple[object, ...]


def snapshot(path: str) -> Snapshot:
    """What a change to ``path`` changes."""
    try:
        st = os.stat(path)
    except OSError:
        return ("missing",)
    own = (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if not os.path.isdir(path):
        return own
    entries = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                try:
                    est = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                entries.append((entry.name, est.st_ino, est.st_size, est.st_mtime_ns, est.st_ctime_ns))
    except OSError:
        pass
    return own + tuple(sorted(entries))


@dataclass
class FileMonitor:
    signum: int
    path: str
    last: Snapshot = field(default_factory=tuple)


class FileMonitors:
    """The master's file monitor table."""

    def __init__(self) -> None:
        self.monitors: list[FileMonitor] = []

    def add(self, signum: int, path: str) -> bool:
        if len(os.fsencode(path)) > MAX_PATH or len(self.monitors) >= MAX_ENTRIES:
            return False
        self.monitors.append(FileMonitor(signum, path, snapshot(path)))
        return True

    def changed(self) -> list[int]:
        """Signals of the monitors whose path changed since the last poll."""
        fired = []
        for monitor in self.monitors:
            now = snapshot(monitor.path)
            if now != monitor.last:
                monitor.last = now
                fired.append(monitor.signum)
        return fired

    def signals_for(self, path: str) -> list[int]:
        """Signals of the monitors watching ``path`` (fired on demand)."""
        target = os.path.abspath(path)
        return [m.signum for m in self.monitors if os.path.abspath(m.path) == target]
