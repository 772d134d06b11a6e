"""Attacks on signed ``@spool(pass_arguments=True)`` tasks, run in a worker of
real uWSGI (``POST /call``) or of the fake: a task that omits ``args`` /
``kwargs`` (the function must not get the raw spool dict), and a genuine
signed task spooled again (it must not run again)."""

from __future__ import annotations

from typing import Any

from tests.real.mule_loops.records import record
from tests.support.calls import call_application as application
from uwsgi_mules import decorators as ud
from uwsgi_mules.backends.selection import current_backend

__all__ = ["application"]


@ud.spool(pass_arguments=True)
def transfer(amount: int, to: str) -> None:
    record("transfers", amount=amount, to=to)


def spool_without_arguments() -> bool:
    """A task naming ``transfer`` with plain keys and no ``args``/``kwargs``."""
    import uwsgi

    uwsgi.spool({b"ud_spool_func": b"transfer", b"ud_spool_ret": b"-2", b"amount": b"1000000", b"to": b"mallory"})
    return True


def spool_replayed(amount: int, copies: int) -> bool:
    """Spool a genuine ``transfer`` once through ``@spool``, then its exact
    packet ``copies`` more times with raw ``uwsgi.spool`` (a replay)."""
    import uwsgi

    backend = current_backend()
    captured: list[dict[Any, bytes]] = []
    original = backend.spool

    def capture(packet: dict[Any, bytes]) -> bytes:
        captured.append(dict(packet))
        return original(packet)

    backend.spool = capture  # type: ignore[method-assign]
    try:
        transfer(amount, to="bob")
    finally:
        del backend.spool
    for _ in range(copies):
        uwsgi.spool(dict(captured[0]))
    record("packets", packet={k.decode() if isinstance(k, bytes) else k: v.hex() for k, v in captured[0].items()})
    return True


def spool_saved_packets() -> int:
    """Spool again every packet :func:`spool_replayed` recorded (a replay
    after a restart of the instance); returns how many."""
    import json
    import os

    import uwsgi

    path = os.path.join(os.environ["MULES_TEST_DIR"], "records", "packets.jsonl")
    with open(path) as fh:
        packets = [json.loads(line)["packet"] for line in fh if line.strip()]
    for packet in packets:
        uwsgi.spool({k.encode(): bytes.fromhex(v) for k, v in packet.items()})
    return len(packets)
