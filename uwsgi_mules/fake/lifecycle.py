"""Reload, stop and start of a fake instance, with the outcomes real uWSGI has
under uwsgi-mules (see :mod:`uwsgi_mules.mule.delivery`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import envelope
from ..mule.delivery.backlog import claim, load, save
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


def send_entries(fake: FakeUwsgi, entries: list[tuple[WireTarget, bytes]]) -> int:
    """Seal and queue saved offloads again (as the next mules replay them)."""
    signer = fake.signer()
    sent = 0
    for target, body in entries:
        raw: int | bytes | None = target if isinstance(target, bytes) else (int(target) or None)
        queue = fake.queue(raw)
        message = signer.seal(body)
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
        for target, body in fake.waiting_source():
            drained.entries.append((target, body))
            drained.paths["(waiting)"] += 1
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
        sent += send_entries(fake, load(path))
        path.unlink()
    if sent:
        fake.log(f"uwsgi-mules: replayed {sent} saved offload(s)")
    return sent
