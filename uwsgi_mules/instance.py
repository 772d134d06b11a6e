"""Files that belong to one running uWSGI instance: its key and its runtime directory.

A uWSGI instance is identified by its master process: the master's pid and
start time survive a graceful reload (uWSGI re-executes itself in the same
process), so the instance keeps its key and runtime directory across
reloads, and a new start gets new ones.

The runtime directory (``UWSGIMULES_RUNTIME_DIR`` or
``<tempdir>/uwsgi-mules-<uid>/<master pid>-<start time>``) is created with
mode 0700 and must belong to the current user; it holds:

- ``key``: 32 random bytes (mode 0600) that sign every envelope;
- ``mule<N>.inflight``: the task each mule is running (see
  :mod:`uwsgi_mules.mule.delivery.inflight`);
- ``backlog/``: offloads saved at a reload, replayed by the new mules.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from .envelope import KEY_SIZE

RUNTIME_DIR_ENV = "UWSGIMULES_RUNTIME_DIR"
BACKLOG_DIR_ENV = "UWSGIMULES_BACKLOG_DIR"


class InsecureDirectory(RuntimeError):
    """A directory that other users could write to, or that belongs to someone else."""


def master_start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ("0" if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return "0"


def default_runtime_dir(master_pid: int) -> Path:
    """Where the runtime directory of the instance with this master lives."""
    configured = os.environ.get(RUNTIME_DIR_ENV)
    if configured:
        return Path(configured)
    base = Path(tempfile.gettempdir()) / f"uwsgi-mules-{os.getuid()}"
    return base / f"{master_pid}-{master_start_time(master_pid)}"


def secure_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; refuse a directory
    owned by another user or writable by group or others."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise InsecureDirectory(f"{path} belongs to uid {info.st_uid}, not to this user ({os.getuid()})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecureDirectory(f"{path} is writable by other users (mode {oct(info.st_mode & 0o777)})")
    return path


def load_or_create_key(directory: Path, *, log: Callable[[str], None] | None = None) -> bytes:
    """The instance key stored in ``directory``; the first caller creates it
    atomically (every process of the instance reads the same bytes) and
    sweeps the runtime directories of instances that are gone."""
    secure_dir(directory)
    path = directory / "key"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    if log is not None:
        sweep_stale(directory.parent, keep=directory, log=log)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".key-")
    try:
        os.write(fd, os.urandom(KEY_SIZE))
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(tmp, path)  # atomic; fails if another process won the race
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _read_key(path)


def sweep_stale(base: Path, *, keep: Path, log: Callable[[str], None]) -> None:
    """Remove the runtime directories under ``base`` whose master is gone;
    one that still holds saved offloads is kept and reported (they were
    never replayed: set ``UWSGIMULES_BACKLOG_DIR`` to carry them over)."""
    if not base.is_dir() or base.stat().st_uid != os.getuid():
        return
    for entry in base.iterdir():
        pid_text, _, start = entry.name.partition("-")
        if entry == keep or not pid_text.isdigit() or not entry.is_dir():
            continue
        if master_start_time(int(pid_text)) == start:
            continue  # that instance is still running
        backlog = entry / "backlog"
        saved = [p for p in backlog.iterdir() if not p.name.startswith(".")] if backlog.is_dir() else []
        if saved:
            log(f"uwsgi-mules: ERROR {len(saved)} backlog file(s) of a stopped instance were never replayed: "
                f"{backlog} (set {BACKLOG_DIR_ENV} so that the next start replays them)")
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise InsecureDirectory(f"{path} must belong to this user with mode 0600")
        key = fh.read()
    if len(key) != KEY_SIZE:
        raise InsecureDirectory(f"{path} holds {len(key)} bytes, not a {KEY_SIZE} bytes key")
    return key


def backlog_dir(runtime_dir: Path | None, configured: str | None) -> Path | None:
    """The directory where offloads are saved at a reload or a stop:
    ``configured`` (the master's ``UWSGIMULES_BACKLOG_DIR``) when set, else
    ``<runtime dir>/backlog``."""
    if configured:
        return Path(configured)
    return None if runtime_dir is None else runtime_dir / "backlog"
