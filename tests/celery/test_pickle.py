"""Pickle on a route only when the Celery app opts in (its own worker: a
JSON-only worker would refuse pickled messages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.celery.conftest import require_celery

require_celery()

from celery import Celery  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402

from tests.celery import tasks  # noqa: E402
from tests.celery.test_routing import make_app  # noqa: E402
from uwsgi_mules import reset_runtime  # noqa: E402
from uwsgi_mules.backends.selection import reset_backends  # noqa: E402
from uwsgi_mules.contrib.celery import route  # noqa: E402
from uwsgi_mules.contrib.celery.arguments import serializer_for  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.runtime.routing import reset_routes  # noqa: E402


@pytest.fixture
def pickle_app(redis_server: Any) -> Iterator[Celery]:
    require_celery()
    app = make_app(
        redis_server.url,
        accept_content=["json", "pickle"],
        result_accept_content=["json", "pickle"],
        result_serializer="pickle",
    )
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["pickled"], shutdown_timeout=30):
        yield app


def test_pickle_only_when_the_app_accepts_it(pickle_app: Celery, redis_server: Any) -> None:
    assert serializer_for(make_app(redis_server.url)) == "json"
    assert serializer_for(pickle_app) == "pickle"
    reset_routes()
    with FakeUwsgi(["uwsgi_mules.mule:run"], {"reports": [1]}) as fake:
        try:
            route(pickle_app, "reports", queue="pickled")
            result = tasks.build_report.submit(1, fmt={"a", "b"}).result(timeout=30)
            assert result["fmt"] == {"a", "b"}
            assert fake.pending() == 0
        finally:
            reset_routes()
            reset_runtime()
    reset_backends()
