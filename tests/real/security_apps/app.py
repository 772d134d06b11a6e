"""The WSGI app of the security tests (real uWSGI: 1 worker, mule 1 programmed,
mule 2 signal-only).

- ``POST /send``: frames (:func:`attacks.encode_frames`); bodies marked
  ``sign`` are sealed here with the instance key, then every message is sent
  with raw ``uwsgi.mule_msg``, retrying while the queue is full;
- ``POST /seal``: frames; answers them sealed (genuine envelopes to mutate);
- ``POST /typed?mule=N``: forwards the body as user text with ``Mule(N).send``;
- ``GET /ping?mule=N&token=T``: a normal offload to mule N;
- ``GET /decorate``: which unimportable functions ``mule_offload`` refuses.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import uwsgi

from uwsgi_mules import Mule, ReservedMessage
from uwsgi_mules.backends.selection import current_backend

from . import tasks  # noqa: F401 - importing the decorated tasks installs the hook before fork
from .attacks import Send, decode_frames, decoration_refusals, encode_frames, send_frames


def _body(environ: dict[str, Any]) -> bytes:
    return environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    route = environ.get("PATH_INFO", "/")
    content_type = "application/json"
    if route == "/send":
        seal = current_backend().signer().seal
        answer = json.dumps(send_frames(decode_frames(_body(environ)), uwsgi.mule_msg, seal)).encode()
    elif route == "/seal":
        seal = current_backend().signer().seal
        answer = encode_frames((Send(seal(m.data)), mule) for m, mule in decode_frames(_body(environ)))
        content_type = "application/octet-stream"
    elif route == "/typed":
        text = _body(environ).decode("utf-8", "surrogateescape")
        try:
            outcome = {"sent": Mule(int(query["mule"])).send(text)}
        except ReservedMessage as exc:
            outcome = {"refused": type(exc).__name__, "message": str(exc)}
        answer = json.dumps(outcome).encode()
    elif route == "/ping":
        answer = json.dumps({"sent": tasks.PINGS[int(query["mule"])](query["token"])}).encode()
    elif route == "/decorate":
        answer = json.dumps(decoration_refusals()).encode()
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"unknown route"]
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(answer)))])
    return [answer]
