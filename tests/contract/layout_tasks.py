"""Functions the layout contract scenarios run in workers and mules."""

from __future__ import annotations

import time
from typing import Any

from uwsgi_mules import Farm, Mule, MulesError, configure
from uwsgi_mules.backends.selection import current_backend


def mule_count() -> int | None:
    """How many mules the typed layer believes this instance has (None: unknown)."""
    topology = current_backend().topology()
    return None if topology is None else topology.mule_count


def timed_send(mule: int, payload: bytes, timeout: float = 10.0) -> dict[str, Any]:
    """``Mule(mule).send`` with its outcome, error and duration."""
    configure(send_timeout=timeout)
    started = time.monotonic()
    try:
        result: Any = Mule(mule).send(payload)
        error = message = None
    except MulesError as exc:
        result, error, message = None, type(exc).__name__, str(exc)
    return {"result": result, "error": error, "message": message, "seconds": time.monotonic() - started}


def farm_only_receive(farm: str) -> tuple[str, str]:
    """In a mule of ``farm``: queue a message for this mule and one for the
    farm, then read with ``Farm.get_message()`` and ``Mule.get_message()``."""
    own = Mule.get_current_id()
    assert Mule(own).send("for the mule itself")
    assert Farm(farm).send("for the farm")
    from_farm = Farm.get_message()
    from_own_queue = Mule.get_message(timeout=2)
    return from_farm, from_own_queue
