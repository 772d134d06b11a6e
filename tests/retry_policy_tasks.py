"""Offloaded functions whose retry policy itself raises (issue: a policy
error must never kill the mule)."""

from __future__ import annotations

from typing import Any

from uwsgi_mules import Mule

#: task ids of every run
RUNS: list[int] = []


class _ExplodingCheck(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        raise RuntimeError("the retry_on check itself failed")


class ExplodingError(Exception, metaclass=_ExplodingCheck):
    """An exception class whose ``isinstance`` check raises: the retry
    policy of a task retried on it fails while deciding."""


@Mule(1).offload(retries=3, retry_on=(ExplodingError,), retry_backoff=0.0, retry_jitter=False)
def policy_fails(task_id: int) -> None:
    RUNS.append(task_id)
    raise ConnectionError(f"{task_id} fails")


@Mule(1).offload()
def plain(task_id: int) -> None:
    RUNS.append(task_id)
