"""Setups (run in the master at import, before fork) and worker functions."""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from uwsgi_mules.locks import Lock
from uwsgi_mules.signals import MULES, WORKERS, Signal, SignalTarget, file_monitor, rb_timer, timer
from uwsgi_mules.signals import cron as cron_schedule
from uwsgi_mules.spooler import SpoolResult, SpoolTask, spool, spooler_handler

from .records import read_records, record, workdir

MULE2_SIG, MULES_SIG, FARM_SIG, WORKERS_SIG, TIMER_SIG, RB_SIG, FILE_SIG, CRON_SIG = range(20, 28)


def recorder(name: str) -> Callable[[int], None]:
    def handler(signum: int) -> None:
        record(name, signum=signum)

    return handler


# -- setups (master) ---------------------------------------------------------------


def routing() -> None:
    Signal(MULE2_SIG).register(recorder("mule2"), SignalTarget.mule(2))
    Signal(MULES_SIG).register(recorder("mules"), MULES)
    Signal(FARM_SIG).register(recorder("farm"), SignalTarget.farm("x"))
    Signal(WORKERS_SIG).register(recorder("workers"), WORKERS)


def timers() -> None:
    timer(1, recorder("timer"), SignalTarget.mule(1), signal=TIMER_SIG)
    rb_timer(1, recorder("rb"), iterations=3, target=SignalTarget.mule(2), signal=RB_SIG)


def watched_path() -> str:
    return str(workdir() / "watched.txt")


def file_monitors() -> None:
    with open(watched_path(), "w") as fh:
        fh.write("start")
    file_monitor(watched_path(), recorder("filemon"), SignalTarget.mule(1), signal=FILE_SIG)


def crons() -> None:
    cron_schedule(recorder("cron_any"), target=SignalTarget.mule(1), signal=CRON_SIG)
    # registered only (fires at minute % 5 == 0): real uWSGI must accept -N
    cron_schedule(recorder("cron_every5"), minute=-5, hour=-2, target=SignalTarget.mule(1))


def nothing() -> None:
    """No registrations (locks)."""


def _spool_task(task: SpoolTask) -> SpoolResult:
    record("spooled", id=task.text("id"), mode=task.text("mode"), body=len(task.body))
    if task.text("mode") == "retry":
        tries = sum(1 for r in read_records("spooled") if r["id"] == task.text("id"))
        return SpoolResult.OK if tries >= 3 else SpoolResult.RETRY
    return SpoolResult.OK


def spooler() -> None:
    spooler_handler(_spool_task)


def decorated() -> None:
    importlib.import_module("tests.real.signal_apps.decorated")


# -- worker functions -----------------------------------------------------------------


def send(num: int) -> None:
    Signal(num).send()


def touch_watched() -> None:
    with open(watched_path(), "a") as fh:
        fh.write("changed")


def locked_increments(lock_number: int, count: int) -> dict[str, Any]:
    """Increment a counter file ``count`` times under the lock, noting overlaps."""
    counter = workdir() / "counter.txt"
    inside = workdir() / "inside.flag"
    overlaps = 0
    for _ in range(count):
        with Lock(lock_number):
            if inside.exists():
                overlaps += 1
            inside.touch()
            value = int(counter.read_text() or 0) if counter.exists() else 0
            time.sleep(0.001)
            counter.write_text(str(value + 1))
            inside.unlink()
    return {"overlaps": overlaps, "pid": os.getpid()}


def read_counter() -> int:
    return int((workdir() / "counter.txt").read_text())


def spool_ok_and_retry() -> list[str]:
    return [
        spool({"id": "a", "mode": "ok"}, body=b"x" * 100_000),
        spool({"id": "b", "mode": "retry"}),
    ]


def spool_too_large() -> str:
    try:
        spool({"id": "big", "data": "x" * 70_000})
    except Exception as exc:
        return type(exc).__name__
    return "accepted"


def exercise_decorated() -> dict[str, Any]:
    return importlib.import_module("tests.real.signal_apps.decorated").exercise()  # type: ignore[no-any-return]
