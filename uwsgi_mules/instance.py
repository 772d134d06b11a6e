"""Files that belong to one running uWSGI instance: its key and its runtime directory.

A uWSGI instance is identified by its master process: the master's pid and
start time survive a graceful reload (uWSGI re-executes itself in the same
process), so the instance keeps its key and runtime directory across
reloads, and a new start gets new ones.

The runtime directory is ``UWSGIMULES_RUNTIME_DIR`` when set, else
``<base>/<master pid>-<start time>`` with ``<base>`` either
``$XDG_RUNTIME_DIR/uwsgi-mules`` (when ``XDG_RUNTIME_DIR`` is set to an
absolute path) or ``<tmp>/uwsgi-mules-<uid>``, ``<tmp>`` being the first
non-empty of ``TMPDIR``, ``TEMP``, ``TMP``, else ``/tmp``. The variables are
read from the C environment, as the C plugin of the master does (not
``tempfile.gettempdir()``, which skips unusable directories and would
compute another directory than the master's).

Every level uwsgi-mules creates is created owner-only (0700) and every
level it relies on is checked with ``lstat`` (:func:`secure_dir`): its own
levels (the base, the runtime directory, ``backlog/``) must be directories,
not links, owned by this user with no group or other permission bits (one
of this user's that nobody else can write, like the 0755 levels older
versions made, is set to 0700 first); the
levels above must belong to root or this user and not be writable by others
unless sticky (like ``/tmp``). Files in it are opened with ``O_NOFOLLOW``
relative to a descriptor of the checked directory. It holds:

- ``key``: 32 random bytes (mode 0600) that sign every envelope;
- ``mule<N>.inflight``: the task each mule is running (see
  :mod:`uwsgi_mules.mule.delivery.inflight`);
- ``backlog/``: offloads saved at a reload, replayed by the new mules.

A directory that fails a check raises :class:`InsecureDirectory`, an
``OSError``: what handles file errors handles it (a mule that cannot load
the key logs it and retries, see
:func:`uwsgi_mules.mule.startup.start_when_possible`). The key files
(:func:`read_key_file`, :func:`create_key_file`) and the directory check of
:mod:`uwsgi_mules.datakey` (:func:`check_owned_dir`) are shared with the
data keys of backlog and spool directories.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from .envelope import KEY_SIZE

RUNTIME_DIR_ENV = "UWSGIMULES_RUNTIME_DIR"
BACKLOG_DIR_ENV = "UWSGIMULES_BACKLOG_DIR"
#: read in this order for the temporary directory, as the C plugin does
TEMP_DIR_ENVS = ("TMPDIR", "TEMP", "TMP")
XDG_RUNTIME_DIR_ENV = "XDG_RUNTIME_DIR"
#: file and directory opens that never follow a link at the last component
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class InsecureDirectory(OSError):
    """A directory (or file) that other users could change, or that belongs to someone else."""


def c_getenv(name: str) -> str | None:
    """An environment variable as the C library (and so the plugin in the
    master) sees it: under pyuwsgi uWSGI's ``env`` option only reaches the C
    environment; ``os.environ`` changes reach it too."""
    try:
        getenv = ctypes.CDLL(None).getenv
    except (OSError, AttributeError):  # pragma: no cover - no C library to ask
        return os.environ.get(name)
    getenv.restype = ctypes.c_char_p
    getenv.argtypes = [ctypes.c_char_p]
    raw = getenv(name.encode())
    return raw.decode(errors="surrogateescape") if raw is not None else None


def temp_dir(getenv: Callable[[str], str | None] = c_getenv) -> Path:
    """The first non-empty of ``TMPDIR``, ``TEMP``, ``TMP``, else ``/tmp``."""
    for name in TEMP_DIR_ENVS:
        value = getenv(name)
        if value:
            return Path(value)
    return Path("/tmp")


def runtime_base(getenv: Callable[[str], str | None] = c_getenv) -> Path:
    """Where the runtime directories of this user's instances live:
    ``$XDG_RUNTIME_DIR/uwsgi-mules`` or ``<tmp>/uwsgi-mules-<uid>``."""
    xdg = getenv(XDG_RUNTIME_DIR_ENV)
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "uwsgi-mules"
    return temp_dir(getenv) / f"uwsgi-mules-{os.getuid()}"


def master_start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ("0" if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return "0"


def default_runtime_dir(master_pid: int, getenv: Callable[[str], str | None] = c_getenv) -> Path:
    """Where the runtime directory of the instance with this master lives."""
    configured = getenv(RUNTIME_DIR_ENV)
    if configured:
        return Path(configured)
    return runtime_base(getenv) / f"{master_pid}-{master_start_time(master_pid)}"


def check_private(path: Path | str, info: os.stat_result) -> None:
    """Refuse ``path`` (described by ``info``, from ``lstat`` or ``fstat``)
    unless it is a directory owned by this user with no group or other bits."""
    uid = os.getuid()
    if not stat.S_ISDIR(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
        raise InsecureDirectory(f"{path} is {kind}; uwsgi-mules needs a private directory there")
    if info.st_uid != uid:
        raise InsecureDirectory(f"{path} belongs to uid {info.st_uid}, not to this user ({uid}): "
                                "another user created it; remove it or choose another directory")
    if info.st_mode & 0o077:
        raise InsecureDirectory(f"{path} is open to other users (mode {oct(info.st_mode & 0o777)}): "
                                f"uwsgi-mules needs mode 0700 (chmod 700 {path})")


def check_ancestor(path: Path, info: os.stat_result) -> None:
    """Refuse a directory above the private levels that another user could
    change: it must belong to root or this user and not be writable by group
    or others unless sticky (``/tmp``)."""
    uid = os.getuid()
    if not stat.S_ISDIR(info.st_mode):
        raise InsecureDirectory(f"{path} is not a directory")
    if info.st_uid not in (0, uid):
        raise InsecureDirectory(f"{path} belongs to uid {info.st_uid}, neither root nor this user ({uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise InsecureDirectory(f"{path} is writable by other users (mode {oct(info.st_mode & 0o777)}) "
                                "and not sticky: they could replace what uwsgi-mules creates in it")


def check_owned_dir(path: Path | str, info: os.stat_result) -> None:
    """Refuse ``path`` unless it is a directory owned by this user that no
    other user can write (read and search bits are allowed: a spool
    directory uWSGI made, which holds a data key, see
    :mod:`uwsgi_mules.datakey`)."""
    if not stat.S_ISDIR(info.st_mode):
        raise InsecureDirectory(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise InsecureDirectory(f"{path} belongs to uid {info.st_uid}, not to this user ({os.getuid()})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecureDirectory(f"{path} is writable by other users (mode {oct(info.st_mode & 0o777)})")


def secure_dir(path: Path, *, private_from: Path | None = None) -> Path:
    """Create ``path`` and its missing parents owner-only (0700) and check
    every level: the levels from ``private_from`` (default: ``path`` itself)
    down, and every level created here, must be private (:func:`check_private`;
    one of this user's that others cannot write is set to 0700 first);
    the levels above must not be changeable by others (:func:`check_ancestor`).
    Raises :class:`InsecureDirectory` (an ``OSError``) with the reason."""
    path = Path(os.path.abspath(path))
    private = Path(os.path.abspath(private_from)) if private_from is not None else path
    if private != path and private not in path.parents:
        raise ValueError(f"{private} is not {path} or one of its parents")
    levels = [*reversed(path.parents), path]
    for level in levels:
        try:
            info = os.lstat(level)
        except FileNotFoundError:
            try:
                os.mkdir(level, 0o700)
            except FileExistsError:
                pass  # another process of the instance made it: checked below
            info = os.lstat(level)
            check_private(level, info)
            continue
        if level == private or private in level.parents:
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077:
                info = _tighten(level)
            check_private(level, info)
        elif stat.S_ISLNK(info.st_mode):
            check_ancestor(level, os.stat(level))  # a link above (/var/run): where it leads is checked
        else:
            check_ancestor(level, info)
    return path


def _tighten(level: Path) -> os.stat_result:
    """Mode 0700 for a directory of this user that nobody else can write
    (an older version created its levels with the umask's mode, 0755): only
    this user could have put anything in it. A directory others can write
    to is left as it is, for :func:`check_private` to refuse."""
    fd = os.open(level, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    try:
        info = os.fstat(fd)
        if info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            os.fchmod(fd, 0o700)
            info = os.fstat(fd)
        return info
    finally:
        os.close(fd)


def open_private_dir(path: Path, *, private_from: Path | None = None) -> int:
    """:func:`secure_dir`, then a descriptor of the checked directory itself
    (``O_DIRECTORY | O_NOFOLLOW``, checked again with ``fstat``): files
    opened relative to it cannot be redirected by renaming a path level."""
    secure_dir(path, private_from=private_from)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    try:
        check_private(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def load_or_create_key(directory: Path, *, log: Callable[[str], None] | None = None,
                       private_from: Path | None = None) -> bytes:
    """The instance key stored in ``directory``; the first caller creates it
    atomically (every process of the instance reads the same bytes) and
    sweeps the runtime directories of instances that are gone (when ``log``
    is given). ``private_from``: see :func:`secure_dir` (the default runtime
    directory passes its base)."""
    dir_fd = open_private_dir(directory, private_from=private_from)
    try:
        try:
            return read_key_file(directory, dir_fd)
        except FileNotFoundError:
            pass
        if log is not None:
            sweep_stale(directory.parent, keep=directory, log=log)
        return create_key_file(directory, dir_fd)
    finally:
        os.close(dir_fd)


def create_key_file(directory: Path, dir_fd: int, name: str = "key") -> bytes:
    """Create the key file ``name`` (32 random bytes, mode 0600) in the
    checked directory ``dir_fd`` unless another process won the race, and
    return the key every process reads (:func:`read_key_file`)."""
    tmp = f".{name}-{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        try:
            os.write(fd, os.urandom(KEY_SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:  # atomic, never replaces: fails if another process won the race
            os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp, dir_fd=dir_fd)
    os.fsync(dir_fd)
    return read_key_file(directory, dir_fd, name)


def sweep_stale(base: Path, *, keep: Path, log: Callable[[str], None]) -> None:
    """Remove the runtime directories under ``base`` whose master is gone;
    one that still holds saved offloads (never replayed: set
    ``UWSGIMULES_BACKLOG_DIR`` to carry them over) or dead tasks (listed and
    re-sent by ``uwsgi-mules dead --dir``) is kept and reported."""
    try:
        info = os.lstat(base)
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return
    for entry in base.iterdir():
        pid_text, _, start = entry.name.partition("-")
        if entry == keep or not pid_text.isdigit() or not entry.is_dir():
            continue
        if master_start_time(int(pid_text)) == start:
            continue  # that instance is still running
        saved = _visible_files(entry / "backlog")
        if saved:
            log(f"uwsgi-mules: ERROR {len(saved)} backlog file(s) of a stopped instance were never replayed: "
                f"{entry / 'backlog'} (set {BACKLOG_DIR_ENV} so that the next start replays them)")
        dead = _dead_task_files(entry / "dead")
        if dead:
            log(f"uwsgi-mules: {len(dead)} dead task file(s) of a stopped instance are kept in {entry / 'dead'} "
                f"(list or re-send them with: uwsgi-mules dead --dir {entry}; delete the directory when done)")
        if not saved and not dead:
            shutil.rmtree(entry, ignore_errors=True)


def _dead_task_files(directory: Path) -> list[Path]:
    """The dead-task records under ``directory`` (also those a re-send had
    claimed when it died) and the re-sent calls no mule claimed yet."""
    try:
        records = [p for p in directory.rglob("*.dead") if not p.name.startswith(".")]
    except OSError:
        records = []
    return records + _visible_files(directory / "resend")


def _visible_files(directory: Path) -> list[Path]:
    """The files of ``directory`` whose name does not start with a dot ([] when there is no such directory)."""
    try:
        return [p for p in directory.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []


def read_key_file(directory: Path, dir_fd: int, name: str = "key") -> bytes:
    """The key in the file ``name`` of the checked directory ``dir_fd``
    (``directory`` names it in errors), opened with ``O_NOFOLLOW`` and
    ``O_NONBLOCK`` (never waits on a FIFO): a regular file of this user,
    mode 0600, exactly 32 bytes, else :class:`InsecureDirectory`.

    :raises FileNotFoundError: there is no such file yet."""
    path = directory / name
    try:  # O_NONBLOCK: a FIFO put in its place is opened (and refused) without waiting for a writer
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the key file is a symbolic link
            raise InsecureDirectory(f"{path} is a symbolic link, not a key file") from exc
        raise
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InsecureDirectory(f"{path} is not a regular file (mode {stat.filemode(info.st_mode)}); "
                                    "uwsgi-mules reads its key only from a regular file")
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise InsecureDirectory(f"{path} must be a file of this user with mode 0600")
        key = fh.read(KEY_SIZE + 1)
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


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a process of another user counts:
    it runs, it is just not ours to signal)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
