"""The calls each mule holds until their time, read from its waiting file
with :func:`uwsgi_mules.mule.delivery.waiting.parse` (the instance key
verifies every record; nothing is unpickled)."""

from __future__ import annotations

from pathlib import Path

from ...envelope import Signer
from ...mule.delivery.backlog import BacklogError, read_private
from ...mule.delivery.waiting import parse, waiting_path
from ..model import WaitingCall, WaitingView

#: waiting calls listed per mule (the count covers them all)
SHOWN = 20


def read_waiting(runtime_dir: Path, mule_id: int, signer: Signer) -> WaitingView | None:
    """Mule ``mule_id``'s waiting calls (None: no waiting file, or it is empty)."""
    path = waiting_path(runtime_dir, mule_id)
    if not path.exists():
        return None
    try:
        data = read_private(path)
    except (BacklogError, OSError) as exc:
        return WaitingView(mule_id, 0, None, problem=f"{path.name} is not read: {exc}")
    if not data:
        return None
    parsed = parse(data, signer)
    calls = sorted(parsed.live.values())
    problem = "" if parsed.torn or not parsed.damage else f"{path.name}: {parsed.damage}"
    return WaitingView(
        mule_id, len(calls), calls[0].due if calls else None,
        [WaitingCall(call.path, call.due) for call in calls[:SHOWN]], problem,
    )
