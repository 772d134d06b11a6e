"""A WSGI app with one periodic entry, due every second, for the real-uWSGI tests.

Every run appends ``{"due", "at", "pid", "instance"}`` (the runtime directory) to ``$MULES_TEST_DIR/periodic.jsonl``
with one ``O_APPEND`` write: the ledger the tests count by due time.
``PERIODIC_CATCH_UP`` picks the policy (default ``all``). ``PERIODIC_KILL_IN_SEND=before|after`` makes the
scheduling mule SIGKILL itself once, at its 4th send: after recording "T, sending", before the send (or once the send
returned, before recording "T, sent"); it creates ``$MULES_TEST_DIR/killed-in-send`` (holding T) first.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

from uwsgi_mules import mule_offload
from uwsgi_mules.periodic import periodic, scheduler

LEDGER = "periodic.jsonl"


@periodic(every=timedelta(seconds=1), catch_up=os.environ.get("PERIODIC_CATCH_UP", "all"), pass_due=True)
@mule_offload(0)
def beat(due: datetime) -> None:
    instance = os.environ.get("UWSGIMULES_RUNTIME_DIR", "")
    line = json.dumps({"due": due.timestamp(), "at": time.time(), "pid": os.getpid(), "instance": instance}) + "\n"
    fd = os.open(Path(os.environ["MULES_TEST_DIR"]) / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _kill_in_send(when: str) -> None:
    """Wrap the scheduler's send: the 4th send of this process kills it, once per test."""
    real_send = scheduler.send_run
    sends = [0]

    def send_run(backend, entry, due):  # type: ignore[no-untyped-def]
        sends[0] += 1
        if sends[0] != 4:
            return real_send(backend, entry, due)
        try:
            fd = os.open(Path(os.environ["MULES_TEST_DIR"]) / "killed-in-send", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:  # killed once already
            return real_send(backend, entry, due)
        os.write(fd, repr(due).encode())
        os.close(fd)
        if when == "after":
            real_send(backend, entry, due)
        os.kill(os.getpid(), signal.SIGKILL)
        return None

    scheduler.send_run = send_run  # type: ignore[assignment]


if os.environ.get("PERIODIC_KILL_IN_SEND"):
    _kill_in_send(os.environ["PERIODIC_KILL_IN_SEND"])


def application(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def,type-arg]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
