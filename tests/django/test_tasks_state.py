"""The result record's state machine (its own transitions, nothing else
changes its state), the one retry decision shared by offloads and Django
tasks, and the one registration function (a stale retry policy is removed)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import TEST_TASKS, setup_django, tasks_framework  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

setup_django()

from django.test import override_settings  # noqa: E402

from tests.django.app_tasks import tasks  # noqa: E402
from uwsgi_mules.contrib.django.ini import fake_options  # noqa: E402
from uwsgi_mules.contrib.django.tasks import compat  # noqa: E402
from uwsgi_mules.contrib.django.tasks.record import (  # noqa: E402
    FAILED, READY, RUNNING, SUCCESSFUL, TaskRecord, TransitionRefused,
)
from uwsgi_mules.contrib.django.tasks.runner import registry_path  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.core.retry_policy import DEAD, RETRY, RetryPolicy, decide  # noqa: E402
from uwsgi_mules.core.retry_policy import FAILED as NOT_RETRIED  # noqa: E402
from uwsgi_mules.core.state import runtime_state  # noqa: E402


def _record() -> TaskRecord:
    return TaskRecord(id="t", task_path="m.f", backend="default", queue_name="default", priority=0,
                      run_after=None, status=READY, enqueued_at=1.0, args=[], kwargs={})


def test_the_record_moves_forward_only_and_counts_versions() -> None:
    record = _record()
    assert record.version == 1
    record.start("mule1:10", 2.0)
    record.fail(["E", "tb"], 3.0, will_retry=True)
    assert (record.status, record.finished_at, record.version) == (READY, None, 3)
    record.start("mule1:10", 4.0)
    record.succeed(42, 5.0)
    assert (record.status, record.return_value, record.version, record.worker_ids) == (
        SUCCESSFUL, 42, 5, ["mule1:10", "mule1:10"])
    assert (record.started_at, record.last_attempted_at, record.finished_at) == (2.0, 4.0, 5.0)
    for move in (lambda: record.start("w", 6.0), lambda: record.succeed(1, 6.0),
                 lambda: record.fail(["E", ""], 6.0, will_retry=False)):
        with pytest.raises(TransitionRefused, match="SUCCESSFUL"):
            move()
    assert (record.status, record.version) == (SUCCESSFUL, 5)
    with pytest.raises(TransitionRefused, match="READY"):
        _record().succeed(1, 1.0)  # never started
    failed = _record()
    failed.start("w", 1.0)
    failed.fail(["E", ""], 2.0, will_retry=False)
    with pytest.raises(TransitionRefused, match="FAILED"):
        failed.observe_remote(READY)
    assert TaskRecord.from_json(failed.to_json()) == failed


@pytest.mark.parametrize(("exc", "attempt", "retries", "outcome"), [
    (ValueError("x"), 1, 2, RETRY), (ValueError("x"), 2, 2, RETRY), (ValueError("x"), 3, 2, DEAD),
    (KeyError("x"), 1, 2, NOT_RETRIED), (ValueError("x"), 1, 0, DEAD),
])
def test_one_decision_for_every_failed_attempt(exc: BaseException, attempt: int, retries: int, outcome: str) -> None:
    policy = RetryPolicy.build(retries, (ValueError,), 2.0, 600.0, False)
    decision = decide(policy, exc, attempt, retries, random.Random(1))
    assert decision.outcome == outcome
    assert decision.delay == (2.0 * 2 ** (attempt - 1) if outcome == RETRY else 0.0)
    assert decide(None, exc, attempt, retries).outcome == NOT_RETRIED


def test_the_runner_is_told_by_the_dispatcher_what_follows_a_failure() -> None:
    options = {"RETRIES": 1, "RETRY_ON": ["tests.django.app_tasks.tasks.TaskFlaked"], "RETRY_JITTER": False}
    told: list[str] = []
    with override_settings(TASKS={"default": {**TEST_TASKS["default"], "OPTIONS": options}}), \
            FakeUwsgi(**fake_options()) as fake:
        r = tasks.flaky.enqueue(5)
        kind = type(runtime_state().registry.tasks[registry_path(tasks.flaky)])
        after = kind.after_decision
        kind.after_decision = lambda self, exc, outcome: (told.append(outcome), after(self, exc, outcome))
        try:
            fake.run_pending()
            assert compat.task_backends["default"].get_result(r.id).status == compat.TaskResultStatus.READY
            fake.advance(5.0)
            fake.run_pending()
        finally:
            kind.after_decision = after
        result = tasks.flaky.get_result(r.id)
    assert told == [RETRY, DEAD]
    assert result.status == compat.TaskResultStatus.FAILED and result.attempts == 2 and len(result.errors) == 2


def test_a_retry_policy_removed_from_the_settings_is_removed_from_the_mule() -> None:
    path = registry_path(tasks.flaky)
    options = {"RETRIES": 2, "RETRY_ON": ["tests.django.app_tasks.tasks.TaskFlaked"]}
    with override_settings(TASKS={"default": {**TEST_TASKS["default"], "OPTIONS": options}}), \
            FakeUwsgi(**fake_options()):
        compat.task_backends["default"].validate_task(tasks.flaky)
        assert runtime_state().retry_policies[path].retry_on == (tasks.TaskFlaked,)
    with override_settings(TASKS=TEST_TASKS), FakeUwsgi(**fake_options()) as fake:
        r = tasks.flaky.enqueue(1)
        assert path not in runtime_state().retry_policies
        fake.run_pending()
        assert tasks.flaky.get_result(r.id).status == compat.TaskResultStatus.FAILED  # not retried
    assert tasks.RUNS[-1:] == [("flaky", 1)]
