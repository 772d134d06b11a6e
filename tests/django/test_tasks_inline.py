"""``LOCAL_MODE = "inline"`` behaves like Django's ``ImmediateBackend``
where Django defines the behaviour: ``task_enqueued`` before the task runs,
``enqueue()`` returns the finished result, a ``KeyboardInterrupt`` reaches
the caller (a mule survives it), and ``validate_task`` reads the capability
flags every time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import setup_django, tasks_framework  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

setup_django()

from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402

from tests.django.app_tasks import tasks  # noqa: E402
from uwsgi_mules.backends.selection import reset_backends  # noqa: E402
from uwsgi_mules.contrib.django import local  # noqa: E402
from uwsgi_mules.contrib.django.tasks import compat  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402

SUCCESSFUL = compat.TaskResultStatus.SUCCESSFUL
FAILED = compat.TaskResultStatus.FAILED


@pytest.fixture
def inline_backend() -> Iterator[Any]:
    reset_backends()
    local._local = None
    with override_settings(UWSGI_MULES={**settings.UWSGI_MULES, "LOCAL_MODE": "inline"}):
        backend = local.ensure_local_backend()
        assert isinstance(backend, local.InlineUwsgi)
        yield backend
    local._local = None
    reset_backends()


@pytest.fixture
def signals_seen() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    receivers = {}
    for name, signal in (("enqueued", compat.task_enqueued), ("started", compat.task_started),
                         ("finished", compat.task_finished)):
        def receive(sender: type, task_result: Any, _name: str = name, **kwargs: Any) -> None:
            seen.append((_name, str(task_result.status)))
        receivers[signal] = receive
        signal.connect(receive)
    yield seen
    for signal, receive in receivers.items():
        signal.disconnect(receive)


def test_inline_sends_enqueued_before_the_task_runs(inline_backend: Any, signals_seen: list[Any]) -> None:
    tasks.add.enqueue(1, 2)
    assert [name for name, _status in signals_seen] == ["enqueued", "started", "finished"]
    assert signals_seen[0][1] == "READY"


def test_inline_enqueue_returns_the_finished_result(inline_backend: Any) -> None:
    result = tasks.add.enqueue(2, 3)
    assert result.status == SUCCESSFUL and result.return_value == 5 and result.attempts == 1
    assert result.started_at is not None and result.finished_at >= result.started_at
    failed = tasks.fail.enqueue("inline")
    assert failed.status == FAILED and failed.errors[0].exception_class_path.endswith("TaskBroke")


def test_inline_lets_a_keyboard_interrupt_through_to_the_caller(inline_backend: Any) -> None:
    with pytest.raises(KeyboardInterrupt, match="stop"):
        tasks.interrupt.enqueue("stop")
    assert tasks.add.enqueue(1, 1).return_value == 2  # nothing left half-done


def test_a_mule_survives_a_keyboard_interrupt(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.interrupt.enqueue("in a mule")
    uwsgi_fake.run_pending()  # the dispatcher reports it; the mule keeps running
    assert tasks.interrupt.get_result(r.id).status == FAILED
    ok = tasks.add.enqueue(1, 2)
    uwsgi_fake.run_pending()
    assert tasks.add.get_result(ok.id).return_value == 3


def test_validate_task_reads_the_capability_flags_every_time(uwsgi_fake: FakeUwsgi) -> None:
    backend = compat.task_backends["default"]
    backend.validate_task(tasks.async_add)
    backend.supports_async_task = False  # an instance attribute: the class keeps True
    try:
        with pytest.raises(compat.InvalidTask):
            backend.validate_task(tasks.async_add)
    finally:
        del backend.supports_async_task
    backend.validate_task(tasks.async_add)
