"""Offloaded functions of the Celery tests (routed or local)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from uwsgi_mules import Farm, Mule
from uwsgi_mules.decorators import mulefunc


@Farm("reports").offload()
def add(a: int, b: int) -> int:
    return a + b


@Farm("reports").offload()
def build_report(report_id: int, *, fmt: str = "pdf") -> dict:
    return {"report": report_id, "fmt": fmt, "pid": os.getpid()}


@Farm("reports").offload()
def fail(message: str) -> None:
    raise KeyError(message)


@Mule(1).offload()
def square(x: int) -> int:
    return x * x


@mulefunc("reports")
def legacy_double(x: int) -> int:
    return 2 * x


@Farm("reports").offload()
def record(n: int) -> int:
    """Append ``n`` to the records file of this process (counted by the tests).

    With ``MULES_TEST_PAUSE`` (seconds) in the environment the task first
    writes ``n`` to ``busy-PID`` and sleeps: the kill test kills a consumer
    while its mules are inside a task, and knows which tasks were in flight.
    """
    directory = Path(os.environ["MULES_TEST_DIR"]) / "records"
    directory.mkdir(exist_ok=True)
    pause = float(os.environ.get("MULES_TEST_PAUSE") or 0)
    busy = directory / f"busy-{os.getpid()}.txt"
    if pause:
        busy.write_text(f"{n}\n")
        time.sleep(pause)
    with open(directory / f"executed-{os.getpid()}.txt", "a") as fh:
        fh.write(f"{n}\n")
    if pause:
        busy.write_text("")
    return n


@Farm("reports").offload()
def big_result(size: int) -> bytes:
    return b"x" * size


def not_offloaded(x: int) -> int:
    """Importable but not decorated: a route must refuse to run it."""
    return x


def send_records(start: int, count: int) -> int:
    """Run in a uWSGI worker: offload ``record(n)`` for n in [start, start+count)."""
    for n in range(start, start + count):
        record(n)
    return count


def submit_adds(start: int, count: int, timeout: float = 60.0) -> list[int]:
    """Submit ``add(n, n)`` ``count`` times, then collect every result."""
    handles = [add.submit(n, n) for n in range(start, start + count)]
    return [h.result(timeout=timeout) for h in handles]


def submit_fail(message: str) -> tuple[str, str, str]:
    from uwsgi_mules.runtime.results import RemoteTaskError

    try:
        fail.submit(message).result(timeout=60)
    except RemoteTaskError as exc:
        return exc.remote_type, exc.remote_message, exc.remote_traceback
    raise AssertionError("no error")


# -- the broker tests (tests/celery/test_broker_*.py): routed by tests.celery.broker_app


def _ledger_line(name: str, text: str) -> None:
    """Append one line to ``$MULES_TEST_DIR/<name>-<pid>.txt`` (one write: a
    process killed mid-task leaves whole lines or none)."""
    path = Path(os.environ["MULES_TEST_DIR"]) / f"{name}-{os.getpid()}.txt"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode() + b"\n")
    finally:
        os.close(fd)


@Farm("durable").offload()
def ledger(n: int, pause: float = 0.0) -> int:
    """Write ``started n`` then sleep ``pause`` then ``n`` to the ledger (one
    line per execution: the kill tests count every task by id)."""
    if pause:
        _ledger_line("started", str(n))
        time.sleep(pause)
    _ledger_line("ledger", str(n))
    return n


@Farm("poison").offload()
def poison(n: int) -> None:
    """Kill the process running it, every time (a task that kills its worker)."""
    import signal

    _ledger_line("poison", str(n))
    os.kill(os.getpid(), signal.SIGKILL)


@Farm("poison").offload()
def healthy(n: int) -> int:
    """An ordinary task on the poison task's queue: it must not be held up."""
    _ledger_line("healthy", str(n))
    return n


@Farm("later").offload()
def punctual(n: int, due: float) -> None:
    """Record when it ran against when it was due (epoch seconds)."""
    _ledger_line("punctual", f"{n} {due!r} {time.time()!r}")


@Farm("results").offload()
def explode(message: str) -> None:
    raise ValueError(message)


@Farm("results").offload()
def double(n: int) -> int:
    return 2 * n
