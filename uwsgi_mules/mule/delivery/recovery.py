"""What a mule does when it starts: report a task its predecessor died in,
and replay offloads saved at a reload or a stop."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

from ... import envelope
from ...envelope import EnvelopeError, Signer, WireTarget
from .backlog import QUEUED_SUFFIX, BacklogError, claim, load, load_queued, save
from .inflight import InflightRecord

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


class ReplayQueue:
    """Offloads to send again (saved at a reload or a stop, or re-queued after
    a crash), pumped by the mule's own loop without blocking it: uWSGI runs
    Python threads only with ``enable-threads``, and a mule replaying into
    its own full queue must keep reading it.

    ``send_nowait(message, target)`` returns True when queued, False when the
    queue is full (tried again later), and raises when it can never be sent
    (then the entry is saved again, never dropped silently).
    """

    def __init__(self, signer: Signer, send_nowait: SendFunction, log: Callable[[str], None],
                 save_to: Path | None) -> None:
        self.signer = signer
        self.send_nowait = send_nowait
        self.log = log
        self.save_to = save_to
        self.pending: collections.deque[tuple[WireTarget, bytes]] = collections.deque()
        self.sent = 0
        self._sources: list[tuple[Path, int]] = []  #: claimed files and how many entries they still owe

    def add_sealed(self, target: WireTarget, message: bytes) -> None:
        self.pending.append((target, message))

    def claim(self, directories: list[Path]) -> int:
        """Claim saved offloads of ``directories``; returns how many were loaded."""
        loaded = 0
        for directory in directories:
            try:
                files = claim(directory)
            except OSError as exc:
                self.log(f"uwsgi-mules: cannot read the backlog directory {directory}: {exc}")
                continue
            for path in files:
                try:
                    if QUEUED_SUFFIX in path.name:
                        entries = self._verified(path, *load_queued(path))
                    else:
                        entries = load(path)
                except (BacklogError, OSError) as exc:
                    self.log(f"uwsgi-mules: backlog file {path.name} not replayed: {exc}")
                    continue
                for target, body in entries:
                    self.pending.append((target, self.signer.seal(body)))
                loaded += len(entries)
                self._sources.append((path, len(entries)))
                self.log(f"uwsgi-mules: replaying {len(entries)} saved offload(s) from {path.name}")
        return loaded

    def _verified(self, path: Path, key: bytes, entries: list[tuple[WireTarget, bytes]]) -> list[tuple[WireTarget, bytes]]:
        """The bodies of the messages of ``path`` that ``key`` verifies."""
        checker = Signer(key)
        bodies = []
        refused = 0
        for target, message in entries:
            try:
                bodies.append((target, bytes(checker.verified_body(message))))
            except EnvelopeError:
                refused += 1
        if refused:
            self.log(f"uwsgi-mules: {refused} message(s) of {path.name} were not offloads of this instance; dropped")
        return bodies

    def pump(self) -> bool:
        """Send what fits now; True while entries remain."""
        while self.pending:
            target, message = self.pending[0]
            try:
                queued = self.send_nowait(message, target)
            except Exception as exc:  # noqa: BLE001 - keep what can never be sent
                self.pending.popleft()
                self._keep([(target, message)], f"{type(exc).__name__}: {exc}")
                continue
            if not queued:
                return True
            self.pending.popleft()
            self.sent += 1
        self._forget_sources()
        return False

    def save_rest(self, why: str) -> None:
        """Save every entry not sent yet (the mule is stopping)."""
        if self.pending:
            self._keep(list(self.pending), why)
            self.pending.clear()
        self._forget_sources()

    def _forget_sources(self) -> None:
        for path, _ in self._sources:
            path.unlink(missing_ok=True)
        self._sources.clear()

    def _keep(self, rest: list[tuple[WireTarget, bytes]], why: str) -> None:
        bodies = [(t, bytes(memoryview(m)[envelope.HEADER_SIZE:])) for t, m in rest]
        where = None
        if self.save_to is not None:
            try:
                where = save(self.save_to, bodies, label="kept")
            except OSError as exc:
                why += f"; saving them failed too: {exc}"
        if where is not None:
            self.log(f"uwsgi-mules: {len(rest)} offload(s) not sent ({why}); kept in {where.name}")
        else:
            self.log(f"uwsgi-mules: ERROR {len(rest)} offload(s) could not be sent and are lost ({why})")
