"""A WSGI app with one periodic entry, due every second, for the real-uWSGI tests.

Every run appends ``{"due", "at", "pid", "instance"}`` (the runtime directory) to ``$MULES_TEST_DIR/periodic.jsonl``
with one ``O_APPEND`` write: the ledger the tests count by due time.
``PERIODIC_CATCH_UP`` picks the policy (default ``all``).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from uwsgi_mules import mule_offload
from uwsgi_mules.periodic import periodic

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


def application(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def,type-arg]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
