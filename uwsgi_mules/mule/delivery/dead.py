"""Tasks that used their last attempt: kept, listed, sent again.

After its last attempt (``retries`` exhausted by exceptions in
``retry_on`` or by crashes of its mule) a task is written as one signed
record file (``<id>.dead``) in ``<dir>/dead/``, where ``<dir>`` is the
backlog directory (``UWSGIMULES_BACKLOG_DIR``) when set, else the
instance's runtime directory. The store is bounded (``UWSGIMULES_DEAD_MAX``, default 1000):
the oldest record is dropped with a log line. A record holds the task's
path, a summary of its arguments, its attempts, the last exception and its
traceback, where it was sent, and the call ready to be sent again (its
attempts reset).

``uwsgi-mules dead`` (:mod:`uwsgi_mules.cli.dead`) lists them; re-sending
moves the chosen calls into ``<dir>/dead/resend/`` as a backlog file, which
an idle running mule claims within about a second (and the next start
otherwise) and queues to the task's target.

A record holds a pickle (the call), so it is signed like a backlog file:
it is a record file of the shared codec (:mod:`.records`) holding one
record::

    task id length (2) | JSON length (4) | task id | JSON | tag (16)

signed with the *data key* of ``<dir>/dead/`` (:mod:`uwsgi_mules.datakey`:
dead tasks outlive the instance when ``<dir>`` is the backlog directory)
after the domain :data:`DOMAIN`; the id must be the file's name. A record
that does not verify (forged, damaged, renamed, signed with a deleted key)
is never decoded nor re-sent: it is named in a log line (on stderr by
``uwsgi-mules dead``). The re-sent calls are a backlog file, signed with the
data key of ``<dir>/dead/resend/``. Records of the previous format
(:data:`OLD_MAGIC`: magic, hex tag, newline, JSON) are still read, so that
dead tasks kept before an upgrade can be listed and re-sent.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ...datakey import DataSigner, data_key
from ...envelope import WireTarget
from ...instance import secure_dir
from .backlog import BacklogError, SavedOffload, save
from .records import NONCE_SIZE, RecordFormat, read_private, read_records, write_durably

DEAD_DIR = "dead"
RESEND_DIR = "resend"
SUFFIX = ".dead"
#: the first bytes of a record file
RECORD_MAGIC = b"UWSGIMULES-DEAD-3\n"
#: the previous format (magic, hex tag, newline, JSON): still read
OLD_MAGIC = b"UWSGIMULES-DEAD-2 "
#: what is signed before a record (a record is never mistaken for other signed data)
DOMAIN = b"uwsgi-mules dead task\x00"
#: dead-task records in the shared record codec: one record, task id then JSON
FORMAT = RecordFormat("dead task record", RECORD_MAGIC, struct.Struct("!HI"), struct.Struct("!I"),
                      lambda values: values, domain=DOMAIN)
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
    body: bytes  #: the pickled call to send again (attempts reset); the record's signature covers it

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
            signer = DataSigner(data_key(directory))
            write_durably(directory / f"{task_id}{SUFFIX}", seal_record(signer, task))
            files = sorted(directory.glob(f"*{SUFFIX}"))
            dropped = []
            for old in files[: max(0, len(files) - self.limit)]:
                try:
                    dropped.append(open_record(signer, old))
                except (BacklogError, ValueError, KeyError, TypeError) as exc:
                    self.log(f"uwsgi-mules: dropped the oldest dead task record {old.name} (unreadable: {exc})")
                old.unlink(missing_ok=True)
        for old_task in dropped:
            self.log(
                f"uwsgi-mules: dropped the oldest dead task record {old_task.id} ({old_task.call}): more than "
                f"{self.limit} kept ({MAX_ENV})"
            )
        return task

    def tasks(self) -> list[DeadTask]:
        """The dead tasks kept, oldest first (a record that does not verify is logged)."""
        if self.base is None:
            return list(self._memory)
        return list_dead(self.base, lambda path, why: self.log(_refusal(path, why)))


#: told of a record file that is not read: its path and why
Refused = Callable[[Path, str], object]


def seal_record(signer: DataSigner, task: DeadTask) -> bytes:
    """The bytes of ``task``'s record file (one signed record: id, JSON)."""
    task_id, text = task.id.encode(), task.to_json().encode()
    nonce = os.urandom(NONCE_SIZE)
    return FORMAT.start(nonce) + FORMAT.encode(signer, nonce, 0, (len(task_id), len(text)), (task_id, text))


def open_record(signer: DataSigner, path: Path) -> DeadTask:
    """The task of the record file ``path`` once its tag verifies for its
    file name; :class:`ValueError` (never decoded) or :class:`BacklogError`
    (not a private file of this user) otherwise."""
    data = read_private(path)
    task_id = path.name[: -len(SUFFIX)]
    if data.startswith(OLD_MAGIC):
        text = _verified_old_record(signer, data, task_id)
    else:
        found: list[tuple[bytes, bytes]] = []
        reading = read_records(FORMAT, data, signer, lambda values, parts: found.append((bytes(parts[0]),
                                                                                         bytes(parts[1]))))
        if reading.damage or len(found) != 1:
            raise ValueError(f"not one signed dead task record ({reading.damage or f'{len(found)} records'})")
        recorded_id, text = found[0]
        if recorded_id != task_id.encode():
            raise ValueError(f"it is the record of {recorded_id!r}, renamed")
    task = DeadTask.from_json(text.decode())
    if task.id != task_id:
        raise ValueError(f"it holds task {task.id}, not {task_id}")
    return task


def _verified_old_record(signer: DataSigner, data: bytes, task_id: str) -> bytes:
    """The JSON of a record of the previous format once its hex tag verifies."""
    head, newline, text = data.partition(b"\n")
    if not newline:
        raise ValueError("not a signed dead task record")
    tag = head[len(OLD_MAGIC) :]
    if not hmac.compare_digest(signer.tag(DOMAIN, task_id.encode(), b"\x00", text).hex().encode(), tag):
        raise ValueError("it does not verify with the data key of its directory (forged, damaged or renamed)")
    return text


def list_dead(base: Path, on_refused: Refused | None = None) -> list[DeadTask]:
    """The dead tasks recorded under ``base`` (the backlog or runtime
    directory), oldest first; a record that does not verify is left out and
    given to ``on_refused`` with the reason."""
    directory = dead_dir(base)
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob(f"*{SUFFIX}"))
    if not paths:
        return []
    signer = DataSigner(data_key(directory))
    found = []
    for path in paths:
        try:
            found.append(open_record(signer, path))
        except (BacklogError, ValueError, KeyError, TypeError) as exc:
            if on_refused is not None:
                on_refused(path, str(exc))
    return found


def _refusal(path: Path, why: str) -> str:
    return f"uwsgi-mules: the dead task record {path} is not read (never re-sent): {why}"


def request_resend(base: Path, ids: Iterable[str] | None, on_refused: Refused | None = None) -> list[DeadTask]:
    """Queue dead tasks (``ids``; None: all) to be sent again: written durably
    as one backlog file of ``<base>/dead/resend`` for a mule to claim, then
    their records are removed. Returns the tasks re-sent; ``KeyError`` for
    an unknown id (nothing is re-sent then)."""
    tasks = {task.id: task for task in list_dead(base, on_refused)}
    chosen = list(tasks.values()) if ids is None else []
    if ids is not None:
        for task_id in ids:
            if task_id not in tasks:
                raise KeyError(task_id)
            chosen.append(tasks[task_id])
    if not chosen:
        return []
    save(resend_dir(base), [SavedOffload(task.target, task.body, task.path) for task in chosen], label="resend")
    for task in chosen:
        (dead_dir(base) / f"{task.id}{SUFFIX}").unlink(missing_ok=True)
    return chosen
