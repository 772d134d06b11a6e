"""WSGI app of the monitoring tests' instance: ``GET /send?task=NAME&n=N``
offloads N calls (``later`` waits an hour); the dashboard is mounted at
``/mules`` by uWSGI (``--mount``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from tests.monitor import tasks


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ.get("PATH_INFO") != "/send":  # e.g. the browser's /favicon.ico
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    task, count = query.get("task", "tally"), int(query.get("n", "1"))
    sent = 0
    for number in range(count):
        if task == "gate":
            sent += bool(tasks.gate())
        elif task == "later":
            sent += bool(tasks.later.offload_in(3600, number))
        elif task == "fragile":
            sent += bool(tasks.fragile(query.get("token", "t")))
        else:
            sent += bool(tasks.tally(number))
    body = json.dumps({"sent": sent}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
