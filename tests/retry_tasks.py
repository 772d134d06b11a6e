"""Offloaded functions of the retry / run-later tests on the fake (every run
recorded with its id, attempt number and the backend's clock)."""

from __future__ import annotations

from uwsgi_mules import Mule, current_attempt
from uwsgi_mules.backends.base import SimulatedCrash
from uwsgi_mules.backends.selection import current_backend

#: (task, id, attempt, clock) of every run
RUNS: list[tuple[str, int, int, float]] = []


def _ran(kind: str, task_id: int) -> int:
    attempt = current_attempt()
    RUNS.append((kind, task_id, attempt, current_backend().wall_time()))
    return attempt


@Mule(1).offload(retries=3, retry_on=(ConnectionError, TimeoutError), retry_backoff=2.0, retry_jitter=False)
def flaky(task_id: int, failures: int) -> None:
    """Raise ConnectionError on the first ``failures`` attempts."""
    if _ran("flaky", task_id) <= failures:
        raise ConnectionError(f"attempt {current_attempt()} of {task_id} fails")


@Mule(1).offload(retries=2, retry_on=(TimeoutError,), retry_backoff=1.0, retry_jitter=False)
def always_times_out(task_id: int) -> None:
    _ran("always", task_id)
    raise TimeoutError(f"{task_id} never answers")


@Mule(1).offload(retries=2, retry_on=(ConnectionError,), retry_backoff=1.0)
def wrong_error(task_id: int) -> None:
    _ran("wrong", task_id)
    raise ValueError("not a retried error")


@Mule(1).offload(retries=2, retry_on=(ConnectionError,), retry_backoff=1.0, retry_jitter=False)
def crash_then_error(task_id: int) -> None:
    """Crash the mule on attempt 1, raise on attempt 2, succeed on attempt 3."""
    attempt = _ran("crash_then_error", task_id)
    if attempt == 1:
        raise SimulatedCrash
    if attempt == 2:
        raise ConnectionError("second attempt fails")


@Mule(1).offload()
def later(task_id: int) -> None:
    _ran("later", task_id)


def runs(kind: str) -> list[tuple[int, int, float]]:
    """``(id, attempt, clock)`` of every run of ``kind``."""
    return [(task_id, attempt, at) for k, task_id, attempt, at in RUNS if k == kind]
