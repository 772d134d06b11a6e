"""Tasks that record the code version they were imported with (chain reload tests)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs

from tests.real.delivery_apps.app import _done
from uwsgi_mules import Mule

VERSION = int((Path(os.environ["MULES_TEST_DIR"]) / "version.txt").read_text())


@Mule(1).offload()
def versioned(task_id: int) -> None:
    import time

    time.sleep(0.02)
    _done(f"v{VERSION}", task_id)


def application(environ, start_response):  # type: ignore[no-untyped-def]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    start = int(query.get("start", "0"))
    sent = sum(bool(versioned(i)) for i in range(start, start + int(query["n"])))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{sent} {VERSION}".encode()]
