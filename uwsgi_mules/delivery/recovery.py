"""What a mule does when it starts: report a task its predecessor died in,
and replay offloads saved at a reload or a stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from .. import envelope
from ..envelope import EnvelopeError, Signer, WireTarget
from .backlog import BacklogError, claim, load, save
from .inflight import InflightRecord

#: sends a sealed envelope to a wire target, raising when it cannot
SendFunction = Callable[[bytes, WireTarget], object]


def recover_unfinished(
    record: InflightRecord, signer: Signer, mule_id: int, log: Callable[[str], None]
) -> tuple[WireTarget, bytes] | None:
    """Report the task the previous process of this mule died in.

    Returns ``(target, envelope)`` to re-queue when the task was offloaded
    with retries left, else None (the task is named in the log as lost, or
    as dead after its last retry).
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
    else:
        log(
            f"uwsgi-mules: mule {mule_id} died while running {call.describe()}; the task is lost "
            "(offload it with retries=N to re-queue it)"
        )
    return None


class Replayer(threading.Thread):
    """Sends saved offloads back to their targets, beside the mule's own loop.

    Entries it cannot send (a queue that stays full, a target that no
    longer exists) are saved again, never dropped silently.
    """

    def __init__(
        self,
        signer: Signer,
        send: SendFunction,
        log: Callable[[str], None],
        directories: list[Path],
        requeue: list[tuple[WireTarget, bytes]],
        save_to: Path | None,
    ) -> None:
        super().__init__(name="uwsgi-mules-replay", daemon=True)
        self.signer = signer
        self.send = send
        self.log = log
        self.directories = directories
        self.requeue = requeue
        self.save_to = save_to
        self.stop_event = threading.Event()
        self.sent = 0

    def claim(self) -> list[Path]:
        files: list[Path] = []
        for directory in self.directories:
            try:
                files += claim(directory)
            except OSError as exc:
                self.log(f"uwsgi-mules: cannot read the backlog directory {directory}: {exc}")
        return files

    def run(self) -> None:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGHUP, signal.SIGINT, signal.SIGTERM])
        except (AttributeError, ValueError, OSError):
            pass
        for target, message in self.requeue:
            self._send_or_keep([(target, message)], sealed=True, source="re-queue")
        for path in self.claim():
            try:
                entries = load(path)
            except (BacklogError, OSError) as exc:
                self.log(f"uwsgi-mules: backlog file {path.name} not replayed: {exc}")
                continue
            if self._send_or_keep(entries, sealed=False, source=path.name):
                self.log(f"uwsgi-mules: replayed {len(entries)} saved offload(s) from {path.name}")
            path.unlink(missing_ok=True)

    def _send_or_keep(self, entries: list[tuple[WireTarget, bytes]], *, sealed: bool, source: str) -> bool:
        for index, (target, data) in enumerate(entries):
            if self.stop_event.is_set():
                return self._keep(entries[index:], sealed, source, "the mule is stopping")
            message = data if sealed else self.signer.seal(data)
            try:
                self.send(message, target)
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - keep what cannot be sent
                return self._keep(entries[index:], sealed, source, f"{type(exc).__name__}: {exc}")
        return True

    def _keep(self, rest: list[tuple[WireTarget, bytes]], sealed: bool, source: str, why: str) -> bool:
        bodies = [(t, bytes(memoryview(m)[envelope.HEADER_SIZE:]) if sealed else m) for t, m in rest]
        where = None
        if self.save_to is not None:
            try:
                where = save(self.save_to, bodies, label="kept")
            except OSError as exc:
                why += f"; saving them failed too: {exc}"
        if where is not None:
            self.log(f"uwsgi-mules: {len(rest)} offload(s) of {source} not sent ({why}); kept in {where.name}")
        else:
            self.log(f"uwsgi-mules: ERROR {len(rest)} offload(s) of {source} could not be sent and are lost ({why})")
        return False
