"""Routing to Celery, in-process: Celery's own test worker on a private
redis-server, with the fake uWSGI as the sending instance."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.celery.conftest import require_celery

require_celery()

from celery import Celery  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402

from tests.celery import tasks  # noqa: E402
from uwsgi_mules import NotOffloadable, reset_runtime  # noqa: E402
from uwsgi_mules.backends.selection import reset_backends  # noqa: E402
from uwsgi_mules.layout.caches import RESULTS_CACHE, CacheSpec  # noqa: E402
from uwsgi_mules.contrib.celery import TASK_NAME, BrokerUnavailable, install, route, routes_of, unroute  # noqa: E402
from uwsgi_mules.errors import BackendUnavailable  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.core.registry import TaskNotFound  # noqa: E402
from uwsgi_mules.runtime.results import RemoteTaskError, ResultTimeout  # noqa: E402
from uwsgi_mules.runtime.routing import reset_routes  # noqa: E402

QUEUES = ["reports", "mule1", "mules"]


def make_app(url: str, **conf: Any) -> Celery:
    app = Celery("uwsgi_mules_tests", broker=url, backend=url, set_as_current=False)
    app.conf.update(worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True, **conf)
    install(app)
    return app


@pytest.fixture(scope="module")
def worker_app(redis_server: Any) -> Iterator[Celery]:  # collected only with Celery installed
    """One app and one in-process Celery worker (solo pool) for the module."""
    require_celery()
    redis_server.flush()
    app = make_app(redis_server.url)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=QUEUES, shutdown_timeout=30):
        yield app


@pytest.fixture
def fake() -> Iterator[FakeUwsgi]:
    reset_runtime()
    reset_routes()
    with FakeUwsgi(
        ["uwsgi_mules.mule:run", "uwsgi_mules.mule:run"], {"reports": [1, 2]}, caches=[CacheSpec(RESULTS_CACHE, 64)]
    ) as instance:
        yield instance
    reset_routes()
    reset_runtime()
    reset_backends()


def test_unrouted_targets_stay_on_local_mules(fake: FakeUwsgi, worker_app: Celery) -> None:
    route(worker_app, 1)  # mule 1 routed: farm "reports" is not
    assert tasks.add(1, 2) is True
    assert fake.pending() == 1
    assert fake.run_pending(raise_errors=True) == 1


def test_routed_offload_runs_on_the_celery_worker_and_submit_returns_the_value(
    fake: FakeUwsgi, worker_app: Celery
) -> None:
    routes = route(worker_app, "reports")
    assert routes[0].queue == "reports"
    assert list(routes_of(worker_app)) == ["farm 'reports'"]
    assert tasks.add(1, 2) is True
    assert fake.pending() == 0, "a routed offload must not reach the local queue"
    handle = tasks.build_report.submit(7, fmt="csv")
    assert handle.result(timeout=30) == {"report": 7, "fmt": "csv", "pid": handle.result()["pid"]}
    assert handle.ready() and isinstance(handle.id, str)
    assert [tasks.add.submit(n, n).result(timeout=30) for n in range(5)] == [0, 2, 4, 6, 8]
    assert fake.pending() == 0


def test_route_and_unroute_switch_between_celery_and_local(fake: FakeUwsgi, worker_app: Celery) -> None:
    tasks.add(1, 1)  # validated and cached for the local queue
    route(worker_app, "reports")
    tasks.add(1, 1)  # the routes version changed: goes to Celery
    assert fake.pending() == 1
    unroute("reports")
    tasks.add(1, 1)
    assert fake.pending() == 2
    assert fake.run_pending() == 2


def test_mule_target_routes_to_queue_mule_n(fake: FakeUwsgi, worker_app: Celery) -> None:
    (routed,) = route(worker_app, 1)
    assert routed.queue == "mule1"
    assert tasks.square.submit(12).result(timeout=30) == 144
    assert fake.pending() == 0


def test_mulefunc_is_routed_too(fake: FakeUwsgi, worker_app: Celery) -> None:
    route(worker_app, "reports")
    assert tasks.legacy_double.submit(21).result(timeout=30) == 42


def test_raising_task_reraises_in_the_caller_with_its_remote_type(fake: FakeUwsgi, worker_app: Celery) -> None:
    route(worker_app, "reports")
    with pytest.raises(RemoteTaskError) as info:
        tasks.fail.submit("boom").result(timeout=30)
    assert info.value.remote_type == "KeyError"
    assert info.value.remote_message == "'boom'"
    assert 'raise KeyError(message)' in info.value.remote_traceback
    assert info.value.worker, "the worker that ran it is named (its node name: the test worker's is the host name)"
    assert f"on Celery worker {info.value.worker}" in str(info.value)


def test_unregistered_paths_are_refused(worker_app: Celery) -> None:
    task = install(worker_app)
    assert task.acks_late is True and task.reject_on_worker_lost is True
    with pytest.raises(TaskNotFound):
        task.apply(args=("tests.celery.tasks:not_offloaded", [1], {})).get()
    with pytest.raises(TaskNotFound):
        task.apply(args=("os:system", ["true"], {})).get()
    result = worker_app.send_task(
        TASK_NAME, args=("tests.celery.tasks:not_offloaded", [1], {}), queue="reports", ignore_result=False
    )
    with pytest.raises(TaskNotFound):
        result.get(timeout=30)


def test_non_json_argument_raises_not_offloadable_naming_it(fake: FakeUwsgi, worker_app: Celery) -> None:
    route(worker_app, "reports")
    with pytest.raises(NotOffloadable, match=r"argument 'b' \(position 1\) is not JSON-serializable"):
        tasks.add(1, {1, 2})
    with pytest.raises(NotOffloadable, match=r"argument 'fmt' is not JSON"):
        tasks.build_report.submit(1, fmt=object())
    assert fake.pending() == 0


def test_plain_calls_store_no_result(fake: FakeUwsgi, worker_app: Celery) -> None:
    import redis

    client = redis.Redis.from_url(worker_app.conf.broker_url)
    route(worker_app, "reports")
    before = set(client.keys("celery-task-meta-*"))
    for n in range(10):
        tasks.add(n, 1)
    marker = tasks.add.submit(0, 0)  # queued after the plain calls on the same solo worker
    assert marker.result(timeout=30) == 0
    added = set(client.keys("celery-task-meta-*")) - before
    assert added == {f"celery-task-meta-{marker.id}".encode()}


def test_routed_offload_works_without_uwsgi(worker_app: Celery) -> None:
    """A Celery worker or a script (no uWSGI, no fake) still sends routed calls."""
    reset_backends()
    reset_routes()
    try:
        with pytest.raises(BackendUnavailable):
            tasks.add(1, 2)
        route(worker_app, "reports")
        assert tasks.add(1, 2) is True
        assert tasks.add.submit(2, 3).result(timeout=30) == 5
    finally:
        reset_routes()


def test_result_timeout(fake: FakeUwsgi, redis_server: Any) -> None:
    app = make_app(redis_server.url)  # no worker consumes queue "nobody"
    route(app, "reports", queue="nobody")
    handle = tasks.add.submit(1, 1)
    assert handle.ready() is False
    with pytest.raises(ResultTimeout):
        handle.result(timeout=0.5)
    # the message names the offloaded function for monitoring (shadow, argsrepr)
    import json

    import redis

    (raw,) = redis.Redis.from_url(redis_server.url).lrange("nobody", 0, -1)
    headers = json.loads(raw)["headers"]
    assert headers["task"] == TASK_NAME and headers["id"] == handle.id
    assert headers["shadow"] == "tests.celery.tasks:add"
    assert (headers["argsrepr"], headers["kwargsrepr"]) == ("(1, 1)", "{}")


def test_broker_down_raises_within_send_timeout(fake: FakeUwsgi) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(f"redis://127.0.0.1:{port}/0")
    route(app, "reports", send_timeout=2.0)
    with pytest.raises(BrokerUnavailable, match="not sent"):
        tasks.add(1, 2)  # the first call also sets Celery up (imports, pools): not timed
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="within 2.0s"):
        tasks.add(1, 2)
    assert time.monotonic() - started < 2.0 + 1.5  # a margin for a busy machine
    assert fake.pending() == 0


def test_unresponsive_broker_raises_within_send_timeout(fake: FakeUwsgi) -> None:
    """A broker host that accepts connections and never answers (a hung or
    black-holed server) must not hang the caller."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # connections complete in the backlog; nothing ever answers
    try:
        app = make_app(f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
        route(app, "reports", send_timeout=1.0)
        with pytest.raises(BrokerUnavailable):
            tasks.add(1, 2)  # sets Celery up: not timed
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            tasks.add(1, 2)
        # one attempt, bounded by the socket timeout (at least 2 s), plus a margin for a busy machine
        assert time.monotonic() - started < 2.0 + 1.5
    finally:
        listener.close()
