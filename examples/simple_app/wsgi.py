"""WSGI entry of the example app.

``/offload?n=3`` offloads each task 3 times; ``&tasks=resize_image,build_report``
limits it to some tasks (for layouts without farm ``mail``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

from . import tasks


def application(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    count = int(query.get("n", ["1"])[0])
    names = query.get("tasks", ["resize_image,build_report,send_email"])[0].split(",")
    if environ.get("PATH_INFO") == "/offload":
        for number in range(count):
            if "resize_image" in names:
                tasks.resize_image(number)
            if "build_report" in names:
                tasks.build_report(number)
            if "send_email" in names:
                tasks.send_email(f"user{number}@example.com")
        body = f"queued {len(names) * count} tasks\n".encode()
    else:
        body = b"uwsgi-mules example app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
