"""A WSGI app for the retry / run-later tests on real uWSGI.

Every run of a task appends one JSON line ``{"id", "kind", "attempt",
"at", "pid"}`` to ``$MULES_TEST_DIR/done.jsonl`` with a single ``O_APPEND``
write; ``at`` is ``time.time()`` in the mule.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs

from uwsgi_mules import Mule, current_attempt


def _done(kind: str, task_id: int) -> int:
    attempt = current_attempt()
    line = json.dumps({"id": task_id, "kind": kind, "attempt": attempt, "at": time.time(), "pid": os.getpid()})
    fd = os.open(Path(os.environ["MULES_TEST_DIR"]) / "done.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    return attempt


@Mule(1).offload(retries=3, retry_on=(ConnectionError,), retry_backoff=1.0, retry_jitter=False)
def flaky(task_id: int) -> None:
    """Fail the first two attempts with ConnectionError, then succeed."""
    if _done("flaky", task_id) <= 2:
        raise ConnectionError(f"attempt {current_attempt()} of {task_id} fails")


@Mule(1).offload(retries=2, retry_on=(TimeoutError,), retry_backoff=0.5, retry_jitter=False)
def until_fixed(task_id: int) -> None:
    """Time out until the file ``fixed`` exists in the test directory."""
    _done("until_fixed", task_id)
    if not (Path(os.environ["MULES_TEST_DIR"]) / "fixed").exists():
        raise TimeoutError(f"{task_id}: the service is down")


@Mule(1).offload(retries=2, retry_on=(ConnectionError,), retry_backoff=0.5)
def wrong_error(task_id: int) -> None:
    _done("wrong_error", task_id)
    raise ValueError("not in retry_on")


@Mule(1).offload()
def later(task_id: int) -> None:
    _done("later", task_id)


@Mule(1).offload()
def work(task_id: int, ms: int) -> None:
    time.sleep(ms / 1000)
    _done("work", task_id)


class _ExplodingCheck(type):
    def __instancecheck__(cls, instance: object) -> bool:
        raise RuntimeError("the retry_on check itself failed")


class ExplodingError(Exception, metaclass=_ExplodingCheck):
    """Its ``isinstance`` check raises: the retry policy fails while deciding."""


@Mule(1).offload(retries=3, retry_on=(ExplodingError,), retry_backoff=0.0, retry_jitter=False)
def policy_fails(task_id: int) -> None:
    _done("policy_fails", task_id)
    raise ConnectionError(f"{task_id} fails")


@Mule(1).offload()
def carry(task_id: int, payload: str) -> None:
    """A call whose message is ``len(payload)`` bytes longer (``&pad=N``)."""
    _done("carry", task_id)


TASKS = {f.__name__: f for f in (flaky, until_fixed, wrong_error, later, work, policy_fails, carry)}


def application(environ, start_response):  # type: ignore[no-untyped-def]
    """``?task=NAME&n=N&start=S[&in=SECONDS][&ms=MS][&pad=BYTES]``: offload N calls; the
    response is ``sent sent_at`` (how many returned True, and when)."""
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    task = TASKS[query.get("task", "later")]
    start = int(query.get("start", "0"))
    count = int(query.get("n", "1"))
    extra: list[object] = [int(query["ms"])] if "ms" in query else []
    if "pad" in query:
        extra = ["x" * int(query["pad"])]
    sent_at = time.time()
    sent = 0
    for task_id in range(start, start + count):
        if "in" in query:
            sent += bool(task.offload_in(float(query["in"]), task_id, *extra))
        else:
            sent += bool(task(task_id, *extra))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{sent} {sent_at}".encode()]
