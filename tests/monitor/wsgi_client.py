"""Calls a WSGI app in process, as a server would (no network)."""

from __future__ import annotations

import io
import json
from typing import Any


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: Any, path: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
         script_name: str = "") -> Response:
    raw = json.dumps(body).encode() if body is not None else b""
    path, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": script_name,
               "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw), "HTTP_HOST": "127.0.0.1:9292"}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, response_headers

    chunks = app(environ, start_response)
    return Response(seen["status"], seen["headers"], b"".join(chunks))


def actor_headers(token: str, csrf: str = "c" * 20) -> dict[str, str]:
    """What the page sends with an action: the CSRF cookie echoed in the header, the action token."""
    return {"Cookie": f"uwsgi_mules_csrf={csrf}", "X-CSRF-Token": csrf, "X-Mules-Token": token}
