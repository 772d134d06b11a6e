"""Reload, stop and start of a fake instance, with the outcomes real uWSGI has
under uwsgi-mules (see :mod:`uwsgi_mules.mule.delivery`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import envelope
from ..mule.delivery.backlog import PARKED_SUFFIX, BacklogError, SavedOffload, claim, load, save, set_aside
from ..mule.delivery.stopping import Drained
from ..envelope import EnvelopeError, WireTarget
from .queues import message_cost

if TYPE_CHECKING:
    from .backend import FakeUwsgi


def drain_offloads(fake: FakeUwsgi) -> Drained:
    """Take every queued message out of the fake's queues, keeping verified offloads."""
    signer = fake.signer()

    def decode(message: bytes) -> tuple[WireTarget, bytes, str] | None:
        try:
            call = envelope.decode(signer, message)
        except EnvelopeError:
            return None
        return call.target, bytes(memoryview(message)[envelope.HEADER_SIZE :]), call.path

    drained = Drained()
    for queue in fake.all_queues():
        while queue.messages:
            message = queue.take(len(queue.messages[0]))
            if message is not None:
                drained.add(message, decode)
    return drained


def send_entries(fake: FakeUwsgi, entries: list[SavedOffload]) -> int:
    """Seal and queue saved offloads again (as the next mules replay them)."""
    signer = fake.signer()
    sent = 0
    for entry in entries:
        queue = fake.queue(_queue_key(entry.target))
        message = signer.seal(entry.body)
        queue.messages.append(message)  # they were queued before: no capacity check
        queue.used += message_cost(len(message))
        sent += 1
    return sent


def reload(fake: FakeUwsgi) -> int:
    """A graceful reload: every queued offload survives and runs afterwards."""
    drained = drain_offloads(fake)
    if drained.other:
        fake.log(f"uwsgi-mules: {drained.other} queued message(s) that were not offloads were discarded by the reload")
    return send_entries(fake, drained.entries)


def shutdown(fake: FakeUwsgi) -> int:
    """A stop: queued offloads, and calls waiting for their time, are saved to
    the backlog directory, or logged as discarded."""
    drained = drain_offloads(fake)
    if fake.waiting_source is not None:
        drained.add_saved(fake.waiting_source(), "(waiting)")
    directory = fake.backlog_dir
    if directory is None:
        if drained.entries:
            fake.log(
                f"uwsgi-mules: ERROR discarded {len(drained.entries)} queued offload(s) at stop "
                f"({drained.summary()}); set UWSGIMULES_BACKLOG_DIR to keep them for the next start"
            )
    elif drained.entries:
        where = save(Path(directory), drained.entries, label="fake")
        fake.log(f"uwsgi-mules: saved {len(drained.entries)} queued offload(s) ({drained.summary()}) to {where}")
    return len(drained.entries)


def replay_backlog(fake: FakeUwsgi) -> int:
    """Queue the offloads a stopped instance saved in the backlog directory."""
    if fake.backlog_dir is None:
        return 0
    sent = 0
    for path in claim(Path(fake.backlog_dir)):
        try:
            loaded = load(path)
        except (BacklogError, OSError) as exc:
            fake.log(f"uwsgi-mules: backlog file {path.name} not replayed: {exc}; moved aside as "
                     f"{set_aside(path).name}")
            continue
        sendable: list[SavedOffload] = []
        unsendable: list[SavedOffload] = []
        for entry in loaded.entries:
            (sendable if _has_queue(fake, entry.target) else unsendable).append(entry)
        sent += send_entries(fake, sendable)
        if unsendable:
            _park(fake, Path(fake.backlog_dir), unsendable)
        if loaded.damage:
            fake.log(f"uwsgi-mules: backlog file {path.name} is damaged ({loaded.damage}): its "
                     f"{len(loaded.entries)} intact entrie(s) replayed; moved aside as {set_aside(path).name}")
        else:
            path.unlink()
    if sent:
        fake.log(f"uwsgi-mules: replayed {sent} saved offload(s)")
    return sent


def _queue_key(target: WireTarget) -> int | bytes | None:
    """The fake's queue key of a wire target (None: the shared queue)."""
    return target if isinstance(target, bytes) else (int(target) or None)


def _has_queue(fake: FakeUwsgi, target: WireTarget) -> bool:
    try:
        fake.queue(_queue_key(target))
    except ValueError:
        return False
    return True


def _park(fake: FakeUwsgi, directory: Path, entries: list[SavedOffload]) -> None:
    """Saved offloads for a mule or farm this layout does not have: parked, as a real mule does."""
    where = save(directory, entries, label="parked", suffix=PARKED_SUFFIX)
    fake.log(f"uwsgi-mules: {len(entries)} saved offload(s) can never be sent (no such mule or farm in this "
             f"layout); parked in {where} (rename it to *.backlog to replay it)")
