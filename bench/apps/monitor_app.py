"""The monitoring bench's instance: ``GET /fill?round=R&k=K`` holds mule 1
(``hold(R)`` waits for the file ``go-R``) and queues K ``work`` calls behind
it; the mule writes ``K first last`` into the file ``done-R`` (``time.time()``)
when the round's last call ran. The
page is mounted at ``/mules`` by the command line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from uwsgi_mules import Mule

_first: dict[int, float] = {}


def _dir() -> Path:
    return Path(os.environ["BENCH_MONITOR_DIR"])


@Mule(1).offload()
def hold(round_id: int) -> None:
    gate = _dir() / f"go-{round_id}"
    while not gate.exists():
        time.sleep(0.0005)


@Mule(1).offload()
def work(round_id: int, index: int, count: int) -> None:
    now = time.time()
    if index == 0:
        _first[round_id] = now
    if index == count - 1:
        done = _dir() / f"done-{round_id}"
        done.with_suffix(".tmp").write_text(f"{count} {_first.pop(round_id, now)} {now}")
        os.replace(done.with_suffix(".tmp"), done)


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ.get("PATH_INFO") != "/fill":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    round_id, count = int(query["round"]), int(query["k"])
    sent = int(bool(hold(round_id)))
    sent += sum(1 for index in range(count) if work(round_id, index, count))
    body = json.dumps({"sent": sent}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
