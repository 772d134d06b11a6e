"""The chaos tasks, one per work kind of :mod:`tests.chaos.schedule`, and the
sender that runs in a worker. The same module runs on the fake and in real
mules; every execution writes a ledger line (:mod:`tests.chaos.ledger`).

Layout: mules 1 and 2 programmed (``uwsgi_mules.mule:run``), mule 3
signal-only, farm ``pool`` of mules 1 and 2.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone
from typing import Any

from uwsgi_mules import Farm, Mule, current_attempt
from uwsgi_mules.backends.base import SimulatedCrash
from uwsgi_mules.backends.selection import current_backend
from uwsgi_mules.core.retry_policy import RetryPolicy

from . import ledger

#: backoff of the flaky task (seconds), kept short so schedules stay short
FLAKY_BACKOFF = 0.2
FLAKY_RETRIES = 3
CRASH_RETRIES = 2


def _most_retries(wanted: int) -> int:
    """``wanted``, or the most retries the library accepts when it bounds them lower."""
    low, high = 0, wanted
    while low < high:
        middle = (low + high + 1) // 2
        try:
            RetryPolicy.build(retries=middle)
            low = middle
        except ValueError:
            high = middle - 1
    return low


#: above 1024 (issue 25 point 3: 2.0 ** 1024 overflows), unless the library bounds retries lower
PERSISTENT_RETRIES = _most_retries(1500)


def _now() -> float:
    return current_backend().wall_time()


def _record(call_id: str, event: str, due: float) -> int:
    attempt = current_attempt()
    ledger.append(call_id, event, attempt, due, _now())
    return attempt


def _fixed() -> bool:
    """After a dead-task re-send fault the failing tasks succeed (the service is back)."""
    return (ledger.chaos_dir() / "fixed").exists()


@Mule(1).offload()
def plain(call_id: str, due: float) -> None:
    _record(call_id, ledger.DONE, due)


@Mule(1).offload()
def slow(call_id: str, due: float) -> None:
    """20 ms of work."""
    time.sleep(0.02)
    _record(call_id, ledger.DONE, due)


@Farm("pool").offload()
def farm(call_id: str, due: float) -> None:
    _record(call_id, ledger.DONE, due)


@Mule(2).offload()
def mule2(call_id: str, due: float) -> None:
    _record(call_id, ledger.DONE, due)


@Mule(3).offload()
def on_signal_mule(call_id: str, due: float) -> None:
    _record(call_id, ledger.DONE, due)


@Mule(1).offload(retries=FLAKY_RETRIES, retry_on=(ConnectionError,), retry_backoff=FLAKY_BACKOFF,
                 retry_jitter=False)
def flaky(call_id: str, due: float, fail_times: int) -> None:
    """Raise ConnectionError on the first ``fail_times`` attempts."""
    if current_attempt() <= fail_times and not _fixed():
        _record(call_id, ledger.ATTEMPT, due)
        raise ConnectionError(f"{call_id}: attempt {current_attempt()} fails")
    _record(call_id, ledger.DONE, due)


@Mule(1).offload(retries=2, retry_on=(ConnectionError,), retry_backoff=FLAKY_BACKOFF)
def wrong_error(call_id: str, due: float) -> None:
    """Completes its work, then raises outside ``retry_on``: runs once, logged."""
    _record(call_id, ledger.DONE, due)
    raise ValueError(f"{call_id}: not in retry_on")


@Mule(1).offload(retries=CRASH_RETRIES)
def crash(call_id: str, due: float) -> None:
    """Kill this mule on attempt 1 (SIGKILL or ``os._exit``), succeed on the retry."""
    if current_attempt() == 1:
        _record(call_id, ledger.ATTEMPT, due)
        if not current_backend().is_real:
            raise SimulatedCrash
        if sum(map(ord, call_id)) % 2:
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    _record(call_id, ledger.DONE, due)


@Mule(1).offload(retries=CRASH_RETRIES)
def slow_crash(call_id: str, due: float) -> None:
    """Work 1 s, then kill this mule (SIGKILL) on attempt 1; succeed on the retry."""
    if current_attempt() == 1:
        _record(call_id, ledger.ATTEMPT, due)
        time.sleep(1.0)
        if not current_backend().is_real:
            raise SimulatedCrash
        os.kill(os.getpid(), signal.SIGKILL)
    _record(call_id, ledger.DONE, due)


@Mule(1).offload(retries=CRASH_RETRIES)
def deaf_crash(call_id: str, due: float) -> None:
    """:func:`slow_crash` with the stop signals blocked: the mule dies before
    its stop handler can run (test_reload_death.py)."""
    if current_attempt() == 1:
        _record(call_id, ledger.ATTEMPT, due)
        if not current_backend().is_real:
            raise SimulatedCrash
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGTERM, signal.SIGINT})
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)
    _record(call_id, ledger.DONE, due)


def worker_sleep(seconds: float) -> None:
    """In a worker: serve one slow request (a graceful reload waits for it)."""
    time.sleep(seconds)


@Mule(1).offload(retries=PERSISTENT_RETRIES, retry_on=(ConnectionError,), retry_backoff=0.0, retry_jitter=False)
def persistent(call_id: str, due: float, fail_times: int) -> None:
    """Like :func:`flaky` with :data:`PERSISTENT_RETRIES` retries and no backoff."""
    if current_attempt() <= fail_times and not _fixed():
        _record(call_id, ledger.ATTEMPT, due)
        raise ConnectionError(f"{call_id}: attempt {current_attempt()} fails")
    _record(call_id, ledger.DONE, due)


@Mule(1).offload()
def sleepy(call_id: str, due: float, seconds: float) -> None:
    """Sleep past ``mule-harakiri`` (the harakiri fault sends one)."""
    _record(call_id, ledger.ATTEMPT, due)
    time.sleep(seconds)
    _record(call_id, ledger.DONE, due)


TASKS = {"plain": plain, "slow": slow, "farm": farm, "mule2": mule2, "signal": on_signal_mule, "flaky": flaky,
         "wrong_error": wrong_error, "crash": crash, "persistent": persistent, "sleepy": sleepy,
         "slow_crash": slow_crash, "deaf_crash": deaf_crash}


def send_batch(calls: list[tuple[str, str, str, float, float]]) -> list[tuple[str, bool, float, str]]:
    """In a worker: send every ``(call_id, kind, how, delay, extra)``; returns
    ``(call_id, accepted, due, error)`` for each (``due``: the wall time it may
    run from)."""
    sent = []
    for call_id, kind, how, delay, extra in calls:
        now = _now()
        due = now + delay if how in ("in", "at") else now
        args: tuple[Any, ...] = (call_id, due) + ((extra,) if kind in ("flaky", "persistent", "sleepy") else ())
        try:
            sent.append((call_id, _send_one(kind, how, delay, due, args), due, ""))
        except Exception as exc:  # counted as not accepted, with the reason
            sent.append((call_id, False, due, f"{type(exc).__name__}: {exc}"))
    return sent


def _send_one(kind: str, how: str, delay: float, due: float, args: tuple[Any, ...]) -> bool:
    """Send one call ``how`` says; True when it was accepted."""
    if kind == "django":
        from .django_tasks import enqueue

        return enqueue(args[0], due, delayed=how in ("in", "at"))
    task = TASKS[kind]
    if how == "submit":
        task.submit(*args)
        return True
    if how == "in":
        return bool(task.offload_in(delay, *args))
    if how == "at":
        return bool(task.offload_at(datetime.fromtimestamp(due, timezone.utc), *args))
    return bool(task(*args))
