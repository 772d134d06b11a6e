"""What a mule does when it starts: report a task its predecessor died in,
and replay offloads saved at a reload or a stop."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

from ... import envelope
from ...envelope import EnvelopeError, Signer, WireTarget
from ...instance import InsecureDirectory
from .backlog import (
    PARKED_SUFFIX,
    QUEUED_SUFFIX,
    BacklogError,
    LoadedFile,
    Progress,
    SavedOffload,
    base_name,
    claim,
    instance_key_trusted,
    load,
    load_queued,
    save,
    set_aside,
    trust_instance_key,
)
from .inflight import InflightRecord

#: entries sent after a parked one before the parked ones are saved (a crash re-sends at most these)
_PARK_BATCH = 64
#: sends a sealed envelope to a wire target, raising when it cannot
SendFunction = Callable[[bytes, WireTarget], object]


def recover_unfinished(
    record: InflightRecord, signer: Signer, mule_id: int, log: Callable[[str], None],
    on_dead: Callable[[envelope.Envelope, int], object] | None = None,
) -> tuple[WireTarget, bytes] | None:
    """Report the task the previous process of this mule died in.

    Returns ``(target, envelope)`` to re-queue when the task was offloaded
    with retries left, else None (the task is named in the log as lost, or
    as dead after its last retry, then given to ``on_dead`` with the mule id).
    """
    message = record.take_unfinished()
    if message is None:
        return None
    record.count(crashed=1)
    try:
        call = envelope.decode(signer, message)
    except EnvelopeError as exc:
        log(f"uwsgi-mules: mule {mule_id} died while running a message it could not read back ({exc})")
        return None
    if call.attempt < call.retries:
        attempt = call.attempt + 1
        record.count(requeued=1)
        log(
            f"uwsgi-mules: mule {mule_id} died while running {call.describe()}; re-queued "
            f"(retry {attempt} of {call.retries})"
        )
        return call.target, envelope.reseal(signer, call, attempt=attempt)
    if call.retries:
        counters = record.count(dead=1)
        log(
            f"uwsgi-mules: DEAD task {call.describe()}: it killed mule {mule_id} {call.attempt + 1} times "
            f"(retries={call.retries}); given up ({counters.dead} dead on this mule)"
        )
        if on_dead is not None:
            on_dead(call, mule_id)
    else:
        log(
            f"uwsgi-mules: mule {mule_id} died while running {call.describe()}; the task is lost "
            "(offload it with retries=N to re-queue it)"
        )
    return None


class _Source:
    """A claimed backlog file being replayed, and how far."""

    __slots__ = ("damaged", "handled", "path", "progress", "total")

    def __init__(self, path: Path, total: int, progress: Progress | None, handled: int, damaged: bool) -> None:
        self.path = path
        self.total = total  #: intact entries of the file
        self.progress = progress
        self.handled = handled  #: entries sent or parked (by this process and the ones before)
        self.damaged = damaged


class _Pending:
    """An offload waiting to be sent again: the sealed message and where it came from."""

    __slots__ = ("message", "path", "source", "target")

    def __init__(self, target: WireTarget, message: bytes, path: str, source: _Source | None) -> None:
        self.target = target
        self.message = message
        self.path = path  #: the task path ("" when unknown)
        self.source = source


#: what a stopping directory error can be (the runtime directory checks raise InsecureDirectory)
_DIRECTORY_ERRORS = (OSError, BacklogError, InsecureDirectory)


class ReplayQueue:
    """Offloads to send again (saved at a reload or a stop, or re-queued after
    a crash), pumped by the mule's own loop without blocking it: uWSGI runs
    Python threads only with ``enable-threads``, and a mule replaying into
    its own full queue must keep reading it.

    ``send_nowait(message, target)`` returns True when queued, False when the
    queue is full (tried again later), and raises when it can never be sent
    (a mule or farm that no longer exists, a message too large): such an
    entry is parked in a ``*.parked`` file with a log line, never re-saved
    for replay. So is an entry whose task ``is_registered`` denies (checked
    on the task path saved with it, before anything is unpickled).

    Progress is recorded per claimed file after every entry, so a replay cut
    by a crash goes on where it stopped; a file is deleted (a damaged one
    moved aside) once all its entries are handled.
    """

    def __init__(self, signer: Signer, send_nowait: SendFunction, log: Callable[[str], None],
                 save_to: Path | None, is_registered: Callable[[str], bool] | None = None) -> None:
        self.signer = signer
        self.send_nowait = send_nowait
        self.log = log
        self.save_to = save_to
        self.is_registered = is_registered
        self.pending: collections.deque[_Pending] = collections.deque()
        self.sent = 0
        self.parked = 0
        self._sources: list[_Source] = []
        self._parked: list[tuple[_Pending, str]] = []
        #: sources of entries sent after an entry parked and not saved yet
        self._after_park: list[_Source | None] = []

    def add_sealed(self, target: WireTarget, message: bytes) -> None:
        self.pending.append(_Pending(target, message, "", None))

    def add_saved(self, entries: list[SavedOffload]) -> None:
        """Offloads a stopping loop of this process handed over (it had no directory to save them to)."""
        seal = self.signer.seal
        self.pending.extend(_Pending(e.target, seal(e.body), e.path, None) for e in entries)

    # -- loading ----------------------------------------------------------------------------

    def claim(self, directories: list[Path], *, record_key: bool = True) -> int:
        """Claim saved offloads of ``directories``; returns how many were
        loaded. ``record_key``: first record the instance key in each
        directory (see :func:`trust_instance_key`), creating it if needed:
        the backlog directories, where the plugin's master saves messages."""
        loaded = 0
        for directory in directories:
            try:
                if record_key:
                    trust_instance_key(directory, self.signer.key)
                files = claim(directory)
            except _DIRECTORY_ERRORS as exc:
                self.log(f"uwsgi-mules: cannot read the backlog directory {directory}: {exc}")
                continue
            for path in files:
                loaded += self._load(path)
        return loaded

    def _load(self, path: Path) -> int:
        try:
            found = self._verified(path, *load_queued(path)) if QUEUED_SUFFIX in path.name else load(path)
        except _DIRECTORY_ERRORS as exc:
            self._set_aside(path, f"not replayed: {exc}")
            return 0
        try:
            progress: Progress | None = Progress(path)
        except _DIRECTORY_ERRORS as exc:
            self.log(f"uwsgi-mules: the replay of {base_name(path)} cannot record its progress ({exc}); "
                     "a crash during it would send its entries again")
            progress = None
        done = min(progress.done, len(found.entries)) if progress is not None else 0
        source = _Source(path, len(found.entries), progress, done, bool(found.damage))
        if found.damage:
            self.log(
                f"uwsgi-mules: backlog file {base_name(path)} is damaged ({found.damage}): replaying its "
                f"{len(found.entries)} intact entrie(s), then it is moved aside"
            )
        rest = found.entries[done:]
        if not rest:
            self._finish(source)
            return 0
        seal = self.signer.seal
        self.pending.extend(_Pending(e.target, seal(e.body), e.path, source) for e in rest)
        self._sources.append(source)
        already = f" ({done} handled before a crash skipped)" if done else ""
        self.log(f"uwsgi-mules: replaying {len(rest)} saved offload(s) from {path.name}{already}")
        return len(rest)

    def _verified(self, path: Path, key: bytes, found: LoadedFile) -> LoadedFile:
        """The bodies of the messages of a ``.queued`` file that ``key``
        verifies, once ``key`` is known as an instance key of this directory."""
        if key != self.signer.key and not instance_key_trusted(path.parent, key):
            raise BacklogError(f"{path.name} is signed with a key no mule of this backlog directory used")
        checker = Signer(key)
        bodies = LoadedFile(damage=found.damage)
        refused = 0
        for entry in found.entries:
            try:
                bodies.entries.append(SavedOffload(entry.target, bytes(checker.verified_body(entry.body))))
            except EnvelopeError:
                refused += 1
        if refused:
            self.log(f"uwsgi-mules: {refused} message(s) of {path.name} were not offloads of this instance; dropped")
        return bodies

    # -- sending ----------------------------------------------------------------------------

    def pump(self) -> bool:
        """Send what fits now; True while entries remain."""
        pending = self.pending
        registered = self.is_registered
        while pending:
            item = pending[0]
            if item.path and registered is not None and not registered(item.path):
                pending.popleft()
                self._parked.append((item, f"task {item.path} is not registered in this mule"))
                continue
            try:
                queued = self.send_nowait(item.message, item.target)
            except Exception as exc:  # noqa: BLE001 - never sendable: parked, with a log line
                pending.popleft()
                self._parked.append((item, f"{type(exc).__name__}: {exc}"))
                continue
            if not queued:
                self._flush_parked()
                return True
            pending.popleft()
            self.sent += 1
            if self._parked:  # the progress moves past parked entries only once they are saved:
                self._after_park.append(item.source)  # in one parked file per pump, bounded
                if len(self._after_park) >= _PARK_BATCH:
                    self._flush_parked()
            else:
                self._handled(item.source)
        self._flush_parked()
        return False

    def _flush_parked(self) -> None:
        if not self._parked:
            return
        parked, self._parked = self._parked, []
        reasons = collections.Counter(why for _, why in parked)
        why = "; ".join(f"{text} x{count}" for text, count in reasons.most_common(3))
        where = None
        if self.save_to is not None:
            try:
                where = save(self.save_to, [_saved(item) for item, _ in parked], label="parked", suffix=PARKED_SUFFIX)
            except (*_DIRECTORY_ERRORS, ValueError) as exc:
                why += f"; parking them failed: {exc}"
        if where is not None:
            self.parked += len(parked)
            self.log(f"uwsgi-mules: {len(parked)} saved offload(s) can never be sent ({why}); parked in "
                     f"{where} (rename it to *.backlog to replay it)")
        else:
            self.log(f"uwsgi-mules: ERROR {len(parked)} saved offload(s) can never be sent and are dropped ({why})")
        for item, _ in parked:
            self._handled(item.source)
        sent, self._after_park = self._after_park, []
        for source in sent:
            self._handled(source)

    def _handled(self, source: _Source | None) -> None:
        if source is None:
            return
        source.handled += 1
        if source.progress is not None:
            try:
                source.progress.advance(source.handled)
            except OSError as exc:
                self.log(f"uwsgi-mules: the progress of {base_name(source.path)} cannot be recorded: {exc}")
                source.progress = None
        if source.handled >= source.total:
            self._finish(source)

    def _finish(self, source: _Source) -> None:
        """Every entry of ``source`` handled: delete it (a damaged one is moved aside)."""
        if source in self._sources:
            self._sources.remove(source)
        if source.damaged:
            self._set_aside(source.path, "its intact entries were replayed")
        else:
            source.path.unlink(missing_ok=True)
        if source.progress is not None:
            source.progress.remove()

    def _set_aside(self, path: Path, why: str) -> None:
        try:
            where = set_aside(path)
        except OSError as exc:
            self.log(f"uwsgi-mules: backlog file {path.name} {why}; moving it aside failed: {exc}")
            return
        self.log(f"uwsgi-mules: backlog file {base_name(path)} {why}; moved aside as {where.name}")

    # -- stopping ---------------------------------------------------------------------------

    def take_unsent(self) -> list[SavedOffload]:
        """The entries not sent yet, to save with the stopping mule's backlog
        (their claimed files are kept until :meth:`release_sources`)."""
        self._flush_parked()
        unsent = [_saved(item) for item in self.pending]
        self.pending.clear()
        return unsent

    def release_sources(self) -> None:
        """Delete the claimed files: what they still owed was saved (or its loss logged)."""
        for source in list(self._sources):
            self._finish(source)

    def keep_sources(self) -> None:
        """Leave the claimed files and their progress for the next start (saving failed)."""
        for source in self._sources:
            if source.progress is not None:
                source.progress.close()
        self._sources.clear()


def _saved(item: _Pending) -> SavedOffload:
    return SavedOffload(item.target, bytes(memoryview(item.message)[envelope.HEADER_SIZE :]), item.path)
