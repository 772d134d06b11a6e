"""Retry policies stay within bounds: the delay saturates at
``retry_backoff_max`` whatever the attempt, ``retries`` is bounded at
declaration, and an error of the policy itself never kills a mule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import retry_policy_tasks as tasks
from uwsgi_mules import Mule
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.retry_policy import MAX_RETRIES, RetryPolicy

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    tasks.RUNS.clear()
    yield
    tasks.RUNS.clear()


@pytest.mark.parametrize("retry", [1, 10, 1024, 1025, 5000, 10**6])
def test_the_delay_saturates_at_the_maximum_for_any_attempt(retry: int) -> None:
    policy = RetryPolicy.build(retries=MAX_RETRIES, retry_backoff=1.0, retry_backoff_max=60.0, retry_jitter=False)
    expected = min(2.0 ** (retry - 1), 60.0) if retry < 100 else 60.0
    assert policy.delay(retry) == expected
    assert 0.0 <= RetryPolicy.build(retries=3, retry_backoff_max=60.0).delay(retry) <= 60.0


def test_a_zero_backoff_stays_zero_for_any_attempt() -> None:
    policy = RetryPolicy.build(retries=MAX_RETRIES, retry_backoff=0.0, retry_jitter=False)
    assert policy.delay(10**6) == 0.0


def test_retries_are_bounded_at_declaration() -> None:
    assert MAX_RETRIES == 1000
    assert RetryPolicy.build(retries=MAX_RETRIES).retries == MAX_RETRIES
    with pytest.raises(ValueError, match=r"retries must be an int between 0 and 1000, got 1001"):
        RetryPolicy.build(retries=MAX_RETRIES + 1)
    with pytest.raises(ValueError, match="between 0 and 1000"):
        Mule(1).offload(retries=2000, retry_on=(ConnectionError,))(lambda: None)


def test_a_policy_error_is_one_log_line_and_a_dead_record_not_a_dead_mule() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        tasks.policy_fails(1)
        tasks.plain(2)
        for _ in range(5):
            fake.run_pending()
            fake.advance(1)
        dead = list(fake.dead_letters)
        lines = [line for line in fake.log_lines if "retry policy" in line]
        crashed = [line for line in fake.log_lines if "died" in line or "respawn" in line]
    print(f"\nruns {tasks.RUNS}, dead {[d.path for d in dead]}, policy lines {lines}")
    assert tasks.RUNS == [1, 2], "the failing task ran once, the next call ran in the same mule"
    assert [d.path for d in dead] == ["tests.retry_policy_tasks:policy_fails"]
    assert dead[0].error == "ConnectionError: 1 fails", "the record keeps the task's own exception"
    assert len(lines) == 1 and "tests.retry_policy_tasks:policy_fails" in lines[0], fake.log_lines
    assert "DEAD task" in lines[0] and "RuntimeError: the retry_on check itself failed" in lines[0]
    assert not crashed, crashed
