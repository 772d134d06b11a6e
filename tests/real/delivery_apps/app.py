"""A WSGI app whose offloads are counted by id (delivery tests on real uWSGI).

Every executed task appends one JSON line ``{"id", "kind", "pid"}`` to
``$MULES_TEST_DIR/done.jsonl`` with a single ``O_APPEND`` write.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs

from uwsgi_mules import Mule, mule_offload


def _done(kind: str, task_id: int) -> None:
    line = json.dumps({"id": task_id, "kind": kind, "pid": os.getpid()}) + "\n"
    fd = os.open(Path(os.environ["MULES_TEST_DIR"]) / "done.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@Mule(1).offload()
def work(task_id: int, ms: int) -> None:
    """Sleep ``ms`` milliseconds, then record ``task_id``."""
    time.sleep(ms / 1000)
    _done("work", task_id)


@mule_offload(1, retries=2)
def crash_first(task_id: int) -> None:
    """Kill this mule the first time it runs (at-least-once under retries)."""
    marker = Path(os.environ["MULES_TEST_DIR"]) / f"crashed-{task_id}"
    if not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    _done("crash_first", task_id)


@mule_offload(1, retries=2)
def always_crash(task_id: int) -> None:
    """Kill this mule every time it runs (ends as a dead task, never a respawn loop)."""
    _done("always_crash_attempt", task_id)
    os.kill(os.getpid(), signal.SIGKILL)


@Mule(1).offload()
def crash_once_no_retries(task_id: int) -> None:
    _done("crash_no_retries_attempt", task_id)
    os.kill(os.getpid(), signal.SIGKILL)


@Mule(1).offload()
def sleep_long(task_id: int, seconds: float) -> None:
    time.sleep(seconds)
    _done("sleep_long", task_id)


TASKS = {f.__name__: f for f in (work, crash_first, always_crash, crash_once_no_retries, sleep_long)}


def stream(start: int, count: int, pause_every: int = 100, pause: float = 0.01) -> int:
    """Offload ``count`` quick tasks, pausing now and then (a stream that lasts)."""
    sent = 0
    for task_id in range(start, start + count):
        sent += bool(work(task_id, 0))
        if task_id % pause_every == 0:
            time.sleep(pause)
    return sent


def application(environ, start_response):  # type: ignore[no-untyped-def]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if query.get("task") == "stream":
        sent = stream(int(query.get("start", "0")), int(query["n"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(sent).encode()]
    if query.get("task") == "empty_to_mule2":  # a zero-length raw message (the plugin drain test)
        import uwsgi

        sent = int(bool(uwsgi.mule_msg(b"", 2)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(sent).encode()]
    task = TASKS[query.pop("task", "work")]
    start = int(query.pop("start", "0"))
    count = int(query.pop("n", "1"))
    extra = [float(v) if "." in v else int(v) for _, v in sorted(query.items())]
    sent = 0
    for task_id in range(start, start + count):
        if task(task_id, *extra):
            sent += 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(sent).encode()]


@Mule(2).offload()
def work_on_mule2(task_id: int, ms: int) -> None:
    """Like :func:`work`, on mule 2 (a signal-only mule in the plugin tests)."""
    time.sleep(ms / 1000)
    _done("work", task_id)


TASKS["work_on_mule2"] = work_on_mule2
