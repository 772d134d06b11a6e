"""The durable state of the periodic entries: each entry's last due time.

One signed file per instance, :data:`STATE_NAME`, in the instance's
persistent directory: the backlog directory (``UWSGIMULES_BACKLOG_DIR``)
when one is set, so that a stop and a start keep it, else the runtime
directory (kept across reloads of one master, not across a stop). It holds
a JSON object ``{entry: EntryState}`` after a header line with the keyed
BLAKE2b tag of the JSON, made with the directory's *data key*
(:mod:`uwsgi_mules.datakey`: it outlives the instance key, which changes at
every start). A file that does not verify is set aside and logged, never
trusted: the entries start from now again.

Writes are atomic (temporary file, fsync, rename) and the directory is
fsynced; :meth:`StateFile.write` lets the caller send between the rename
(which every process sees at once) and the directory fsync, which only
matters for a power loss (see :mod:`uwsgi_mules.periodic.scheduler`).

This is a small record of its own (magic, tag, JSON), like the dead task
records of :mod:`uwsgi_mules.mule.delivery.dead`; it can move onto a shared
signed record codec when there is one.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..datakey import DataSigner, data_key
from ..instance import secure_dir
from ..mule.delivery.records import fsync_dir, write_durably

STATE_NAME = "periodic-state"
RECORD_MAGIC = b"uwsgi-mules periodic state 1 "
DOMAIN = b"uwsgi-mules periodic state\x00"

__all__ = ["STATE_NAME", "EntryState", "StateFile"]


@dataclass
class EntryState:
    """What is known of one entry.

    ``due``: the last due time taken care of (epoch seconds);
    ``sending``: True while that due time's run is being sent (a successor
    that finds it True knows the sender died during the send);
    ``schedule``: the schedule's fingerprint ``due`` belongs to;
    ``sent_at``/``outcome``: the last run's send time and what came of it;
    ``token``: the lease claim of the run being sent (a successor sending
    it again claims with it: the lease knows it as this instance's).
    """

    due: float
    schedule: str
    sending: bool = False
    sent_at: float | None = None
    outcome: str = ""
    token: str = ""

    @classmethod
    def from_json(cls, data: Any) -> EntryState:
        if not isinstance(data, dict) or not isinstance(data.get("due"), (int, float)):
            raise ValueError("not an entry state")  # noqa: TRY004 - a damaged state file: bad data, not a caller's bug
        return cls(float(data["due"]), str(data.get("schedule", "")), bool(data.get("sending", False)),
                   data.get("sent_at"), str(data.get("outcome", "")), str(data.get("token", "")))


class StateFile:
    """The state of every entry, in ``directory`` (None: in memory only)."""

    def __init__(self, directory: Path | None, log: Callable[[str], None]) -> None:
        self.directory = directory
        self.log = log
        self._memory: dict[str, EntryState] = {}
        self._signer: DataSigner | None = None

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / STATE_NAME

    def _sign(self) -> DataSigner:
        if self._signer is None:
            assert self.directory is not None
            secure_dir(self.directory)
            self._signer = DataSigner(data_key(self.directory))
        return self._signer

    def read(self, *, set_aside: bool = True) -> dict[str, EntryState]:
        """Every entry's state (a damaged or forged file is logged and, unless
        ``set_aside`` is False (a reader such as the listing or the monitoring
        page, which must change nothing), set aside: {})."""
        path = self.path
        if path is None:
            return {name: EntryState(**asdict(s)) for name, s in self._memory.items()}
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            return self._open(data)
        except (ValueError, TypeError, KeyError) as exc:
            if not set_aside:
                self.log(f"uwsgi-mules: ERROR periodic state {path} refused ({exc}); left for the scheduler")
                return {}
            aside = path.with_name(f"{STATE_NAME}.refused-{os.getpid()}")
            os.replace(path, aside)
            self.log(f"uwsgi-mules: ERROR periodic state {path} refused ({exc}); set aside as {aside.name}, "
                     "every entry starts from now")
            return {}

    def _open(self, data: bytes) -> dict[str, EntryState]:
        head, newline, text = data.partition(b"\n")
        if not newline or not head.startswith(RECORD_MAGIC):
            raise ValueError("not a periodic state file")
        tag = head[len(RECORD_MAGIC):]
        if not hmac.compare_digest(self._sign().tag(DOMAIN, text).hex().encode(), tag):
            raise ValueError("it does not verify with the data key of its directory (forged or damaged)")
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 - a damaged state file: bad data, not a caller's bug
        return {str(name): EntryState.from_json(value) for name, value in raw.items()}

    def write(self, states: dict[str, EntryState]) -> Callable[[], None]:
        """Replace the state (atomically, visible to every process on return);
        returns the directory fsync to call once the caller is done."""
        path = self.path
        if path is None:
            self._memory = {name: EntryState(**asdict(s)) for name, s in states.items()}
            return _nothing
        text = json.dumps({name: asdict(s) for name, s in sorted(states.items())}, sort_keys=True).encode()
        data = RECORD_MAGIC + self._sign().tag(DOMAIN, text).hex().encode() + b"\n" + text
        write_durably(path, data, sync_dir=False)  # the directory is fsynced once the caller is done
        return lambda: fsync_dir(path.parent)


def _nothing() -> None:
    return None

