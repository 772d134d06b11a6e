"""WSGI entry of the example app: ``/offload?n=3`` offloads tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

from . import tasks


def application(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    count = int(query.get("n", ["1"])[0])
    if environ.get("PATH_INFO") == "/offload":
        for number in range(count):
            tasks.resize_image(number)
            tasks.build_report(number)
            tasks.send_email(f"user{number}@example.com")
        body = f"queued {3 * count} tasks\n".encode()
    else:
        body = b"uwsgi-mules example app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
