"""Django tasks (``MulesBackend``) on a queue routed to Celery: Celery's own
test worker on a private redis-server runs them, ``get_result`` reads
Celery's result; the fake uWSGI is the sending instance (it holds the READY
records)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.celery.conftest import require_celery

require_celery()
pytest.importorskip("django", reason="the Django tasks tests need Django installed")

from tests.django.site_setup import setup_django, tasks_framework  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

setup_django()

from celery import Celery  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402

from tests.django.app_tasks import tasks  # noqa: E402
from uwsgi_mules import reset_runtime  # noqa: E402
from uwsgi_mules.contrib.celery import install, route  # noqa: E402
from uwsgi_mules.contrib.django.ini import fake_options  # noqa: E402
from uwsgi_mules.contrib.django.tasks import compat  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.runtime.routing import reset_routes  # noqa: E402


@pytest.fixture(scope="module")
def worker_app(redis_server: Any) -> Iterator[Celery]:
    redis_server.flush()
    app = Celery("uwsgi_mules_django_tasks", broker=redis_server.url, backend=redis_server.url, set_as_current=False)
    app.conf.update(worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True)
    install(app)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["notes"], shutdown_timeout=30):
        yield app


@pytest.fixture
def routed(worker_app: Celery) -> Iterator[FakeUwsgi]:
    """The farm "notes" (queues "notes" and "reports") routed to the Celery worker."""
    reset_runtime()
    reset_routes()
    with FakeUwsgi(**fake_options()) as fake:
        route(worker_app, "notes")
        yield fake
    reset_routes()
    reset_runtime()


def _finished(get: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = get()
        if result.is_finished or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_a_routed_queue_runs_on_celery_and_get_result_reads_celerys_result(routed: FakeUwsgi) -> None:
    task = tasks.add.using(queue_name="notes")
    r = task.enqueue(2, 3)
    assert r.status == "READY" and routed.pending() == 0  # nothing for the local mules
    assert tasks.add.get_result(r.id).status == "READY" or tasks.add.get_result(r.id).is_finished
    done = _finished(lambda: tasks.add.get_result(r.id))
    assert done.status == "SUCCESSFUL" and done.return_value == 5, done
    assert done.worker_ids[0].startswith("celery:") and done.attempts == 1
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert done.task.queue_name == "notes"

    mapped = _finished(lambda r=tasks.with_context.using(queue_name="reports").enqueue("c"):  # TARGETS: farm "notes"
                       tasks.with_context.get_result(r.id))
    assert mapped.status == "SUCCESSFUL" and mapped.return_value["attempt"] == 1


def test_a_failure_on_celery_has_the_exception_path_and_traceback(routed: FakeUwsgi) -> None:
    r = tasks.fail.using(queue_name="notes").enqueue("on celery")
    failed = _finished(lambda: tasks.fail.get_result(r.id))
    assert failed.status == "FAILED"
    [error] = failed.errors
    assert error.exception_class_path == "tests.django.app_tasks.tasks.TaskBroke"
    assert "TaskBroke" in error.traceback and "on celery" in error.traceback
    assert failed.worker_ids[0].startswith("celery:") and len(failed.worker_ids[0]) > len("celery:"), (
        f"the Celery worker is named: {failed.worker_ids}")
    assert tasks.add.using(queue_name="default").enqueue(1, 1) and routed.pending() == 1  # unrouted: local


def test_run_after_on_a_routed_queue_runs_on_celery_at_its_time(routed: FakeUwsgi) -> None:
    """``run_after`` on a routed queue is Celery's ``eta``: never before it."""
    import datetime

    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    r = tasks.add.using(queue_name="notes", run_after=when).enqueue(1, 2)
    assert routed.pending() == 0, "nothing for the local mules"
    assert tasks.add.get_result(r.id).status == "READY"
    done = _finished(lambda: tasks.add.get_result(r.id))
    assert done.status == "SUCCESSFUL" and done.return_value == 3, done
    assert done.started_at >= when, (done.started_at, when)
    assert done.task.run_after == when
