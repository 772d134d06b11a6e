"""Offloaded functions of the fake delivery tests (counted by id)."""

from __future__ import annotations

from collections import Counter

from uwsgi_mules import Mule, mule_offload
from uwsgi_mules.backends.base import SimulatedCrash

DONE: Counter[int] = Counter()
CRASHED: set[int] = set()


@Mule(1).offload()
def work(task_id: int) -> None:
    DONE[task_id] += 1


@mule_offload(1, retries=2)
def crash_first(task_id: int) -> None:
    if task_id not in CRASHED:
        CRASHED.add(task_id)
        raise SimulatedCrash
    DONE[task_id] += 1


@mule_offload(1, retries=2)
def always_crash(task_id: int) -> None:
    DONE[task_id] += 1
    raise SimulatedCrash


@Mule(1).offload()
def crash_no_retries(task_id: int) -> None:
    DONE[task_id] += 1
    raise SimulatedCrash
