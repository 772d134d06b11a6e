"""Tasks that used their last attempt: kept, listed, sent again.

After its last attempt (``retries`` exhausted by exceptions in
``retry_on`` or by crashes of its mule) a task is written as one JSON file
in ``<dir>/dead/``, where ``<dir>`` is the backlog directory
(``UWSGIMULES_BACKLOG_DIR``) when set, else the instance's runtime
directory. The store is bounded (``UWSGIMULES_DEAD_MAX``, default 1000):
the oldest record is dropped with a log line. A record holds the task's
path, a summary of its arguments, its attempts, the last exception and its
traceback, where it was sent, and the call ready to be sent again (its
attempts reset).

``uwsgi-mules dead`` (:mod:`uwsgi_mules.cli.dead`) lists them; re-sending
moves the chosen calls into ``<dir>/dead/resend/`` as a backlog file, which
an idle running mule claims within about a second (and the next start
otherwise) and queues to the task's target. Only the instance's user can
write these directories (mode 0700), which is what makes the bodies trusted.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ...envelope import WireTarget
from ...instance import secure_dir
from .backlog import save

DEAD_DIR = "dead"
RESEND_DIR = "resend"
SUFFIX = ".dead.json"
MAX_ENV = "UWSGIMULES_DEAD_MAX"
DEFAULT_MAX = 1000


@dataclass(frozen=True)
class DeadTask:
    """One task given up after its last attempt."""

    id: str
    path: str  #: ``module:qualname`` of the task
    call: str  #: ``path(*args, **kwargs)``, at most about 200 characters
    attempts: int  #: how many times it ran
    retries: int
    error: str  #: ``Type: message`` of the last exception (or the crash)
    traceback: str
    died_at: float  #: epoch seconds
    target: WireTarget  #: where it was sent: mule id (0: shared queue) or farm name
    body: bytes  #: the pickled call to send again (attempts reset); verified, not signed

    def to_json(self) -> str:
        data = asdict(self)
        data["target"] = {"farm": self.target.decode(errors="replace")} if isinstance(self.target, bytes) else self.target
        data["body"] = base64.b64encode(self.body).decode()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> DeadTask:
        data = json.loads(text)
        target = data["target"]
        data["target"] = target["farm"].encode() if isinstance(target, dict) else int(target)
        data["body"] = base64.b64decode(data["body"])
        return cls(**data)


def dead_dir(base: Path) -> Path:
    return base / DEAD_DIR


def resend_dir(base: Path) -> Path:
    """Where re-sent dead tasks wait for a mule to claim them."""
    return base / DEAD_DIR / RESEND_DIR


class DeadStore:
    """The dead tasks of an instance: files in ``<base>/dead`` (None: in memory)."""

    def __init__(self, base: Path | None, log: Callable[[str], None], limit: int = DEFAULT_MAX) -> None:
        self.base = base
        self.log = log
        self.limit = max(1, limit)
        self._memory: list[DeadTask] = []
        self._seq = 0

    def add(self, path: str, call: str, attempts: int, retries: int, error: str, traceback: str,
            target: WireTarget, body: bytes) -> DeadTask:
        """Keep a dead task (dropping the oldest beyond the limit); returns it."""
        self._seq += 1
        task_id = f"{time.time_ns():020d}-{os.getpid()}-{self._seq}"
        task = DeadTask(task_id, path, call, attempts, retries, error, traceback, time.time(), target, bytes(body))
        if self.base is None:
            self._memory.append(task)
            dropped = self._memory[: max(0, len(self._memory) - self.limit)]
            del self._memory[: len(dropped)]
        else:
            directory = dead_dir(self.base)
            secure_dir(directory)
            _write_durably(directory / f"{task_id}{SUFFIX}", task.to_json().encode())
            files = sorted(directory.glob(f"*{SUFFIX}"))
            dropped = []
            for old in files[: max(0, len(files) - self.limit)]:
                try:
                    dropped.append(DeadTask.from_json(old.read_text()))
                except (OSError, ValueError, KeyError, TypeError):
                    pass
                old.unlink(missing_ok=True)
        for old_task in dropped:
            self.log(
                f"uwsgi-mules: dropped the oldest dead task record {old_task.id} ({old_task.call}): more than "
                f"{self.limit} kept ({MAX_ENV})"
            )
        return task

    def tasks(self) -> list[DeadTask]:
        """The dead tasks kept, oldest first."""
        if self.base is None:
            return list(self._memory)
        return list_dead(self.base)


def list_dead(base: Path) -> list[DeadTask]:
    """The dead tasks recorded under ``base`` (the backlog or runtime directory), oldest first."""
    directory = dead_dir(base)
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            found.append(DeadTask.from_json(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def request_resend(base: Path, ids: Iterable[str] | None) -> list[DeadTask]:
    """Queue dead tasks (``ids``; None: all) to be sent again: written durably
    as one backlog file of ``<base>/dead/resend`` for a mule to claim, then
    their records are removed. Returns the tasks re-sent; ``KeyError`` for
    an unknown id (nothing is re-sent then)."""
    tasks = {task.id: task for task in list_dead(base)}
    chosen = list(tasks.values()) if ids is None else []
    if ids is not None:
        for task_id in ids:
            if task_id not in tasks:
                raise KeyError(task_id)
            chosen.append(tasks[task_id])
    if not chosen:
        return []
    save(resend_dir(base), [(task.target, task.body) for task in chosen], label="resend")
    for task in chosen:
        (dead_dir(base) / f"{task.id}{SUFFIX}").unlink(missing_ok=True)
    return chosen


def _write_durably(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".writing-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
