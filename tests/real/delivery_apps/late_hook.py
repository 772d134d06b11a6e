"""An app that sets its own ``uwsgi.mule_msg_hook`` AFTER importing offloaded
functions (signal-only mules): offloads must still run."""

from __future__ import annotations

from urllib.parse import parse_qs

import uwsgi

from tests.real.delivery_apps.app import _done, work
from uwsgi_mules import Mule


def app_hook(message: bytes) -> None:
    _done("app_hook", int(message.split(b":")[1]))


uwsgi.mule_msg_hook = app_hook  # set late: after the import above installed ours


def application(environ, start_response):  # type: ignore[no-untyped-def]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    sent = 0
    for task_id in range(int(query["n"])):
        sent += bool(work(task_id, 1))
        sent += bool(Mule(1).send(f"plain:{task_id}"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(sent).encode()]
