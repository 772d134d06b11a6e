"""Django tasks (``MulesBackend``) on a queue routed to Celery on RabbitMQ:
Celery's own test worker consumes the route's quorum queue, results in the
session's redis-server; ``run_after`` waits in RabbitMQ (native delayed
delivery) and never runs early; a failure names the worker."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.celery.conftest import require_celery

pytestmark = [pytest.mark.rabbitmq, pytest.mark.xdist_group("celery-broker")]

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
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.runtime.routing import reset_routes  # noqa: E402


@pytest.fixture(scope="module")
def worker_app(rabbitmq_node: Any, redis_server: Any) -> Iterator[Celery]:
    """A RabbitMQ-routed app (queue "notes" declared by route() before the
    worker starts) and Celery's in-process test worker on it."""
    app = Celery("uwsgi_mules_django_rabbitmq", broker=rabbitmq_node.url, backend=redis_server.url,
                 set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=True)
    install(app)
    reset_routes()
    route(app, "notes")
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=["notes"], shutdown_timeout=30):
            yield app
    finally:
        reset_routes()


@pytest.fixture
def routed(worker_app: Celery) -> Iterator[FakeUwsgi]:
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


def test_run_after_on_a_rabbitmq_route_waits_in_the_broker(routed: FakeUwsgi) -> None:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    r = tasks.add.using(queue_name="notes", run_after=when).enqueue(4, 5)
    assert routed.pending() == 0 and tasks.add.get_result(r.id).status == "READY"
    done = _finished(lambda: tasks.add.get_result(r.id))
    assert done.status == "SUCCESSFUL" and done.return_value == 9, done
    assert done.started_at >= when, (done.started_at, when)


def test_a_failure_on_a_rabbitmq_route_names_its_worker(routed: FakeUwsgi) -> None:
    r = tasks.fail.using(queue_name="notes").enqueue("on rabbitmq")
    failed = _finished(lambda: tasks.fail.get_result(r.id))
    assert failed.status == "FAILED"
    assert failed.errors[0].exception_class_path == "tests.django.app_tasks.tasks.TaskBroke"
    assert failed.worker_ids[0].startswith("celery:") and len(failed.worker_ids[0]) > len("celery:"), failed.worker_ids
