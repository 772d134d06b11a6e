"""The safe settings route() applies on an amqp:// broker (no broker needed:
nothing here connects)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.celery.conftest import require_celery

require_celery()

from celery import Celery  # noqa: E402

import tests.celery.tasks  # noqa: E402,F401 - decorates the offloaded functions
from uwsgi_mules.contrib.celery import route, unroute  # noqa: E402
from uwsgi_mules.contrib.celery.rabbitmq import (  # noqa: E402
    DEAD_LETTER_EXCHANGE,
    is_rabbitmq,
    queue_arguments,
)
from uwsgi_mules.contrib.celery.routes import MIN_DELAYED  # noqa: E402

AMQP = "amqp://guest:guest@127.0.0.1:1//"


@pytest.fixture(autouse=True)
def no_routes_left() -> Iterator[None]:
    yield
    unroute()


@pytest.mark.parametrize(("url", "expected"), [
    (AMQP, True), ("amqps://h//", True), ("pyamqp://h//", True), ("AMQP://h//", True),
    ("amqp://a//;amqp://b//", True), ("redis://h:6379/0", False), ("memory://", False), ("", False),
])
def test_the_broker_url_chooses_rabbitmq(url: str, expected: bool) -> None:
    assert is_rabbitmq(Celery("t", broker=url or None, set_as_current=False)) is expected


def test_route_on_rabbitmq_applies_the_safe_settings() -> None:
    app = Celery("t", broker=AMQP, set_as_current=False)
    route(app, "reports", delivery_limit=4)
    conf = app.conf
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1 and conf.result_extended is True
    assert conf.broker_transport_options["confirm_publish"] is True
    queue = app.amqp.queues["reports"]
    assert queue.durable and queue.exchange.type == "topic" and queue.routing_key == "reports"
    assert queue.queue_arguments == {
        "x-queue-type": "quorum", "x-delivery-limit": 4, "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
    }
    assert any(step.__name__ == "DeadLetterStep" for step in app.steps["consumer"])


def test_the_apps_own_settings_win() -> None:
    class Config:
        task_acks_late = False
        worker_prefetch_multiplier = 4
        broker_transport_options = {"confirm_publish": False}

    from kombu import Queue

    app = Celery("t", broker=AMQP, set_as_current=False)
    app.config_from_object(Config)
    app.conf.task_queues = [Queue("reports", routing_key="reports")]
    route(app, "reports")
    assert app.conf.task_acks_late is False and app.conf.worker_prefetch_multiplier == 4
    assert app.conf.broker_transport_options["confirm_publish"] is False
    assert app.conf.task_reject_on_worker_lost is True, "what the app leaves unset is applied"
    assert not app.amqp.queues["reports"].queue_arguments, "the app's own queue is kept as declared"


def test_redis_routes_get_no_rabbitmq_settings() -> None:
    app = Celery("t", broker="redis://127.0.0.1:1/0", set_as_current=False)
    route(app, "reports")
    assert "confirm_publish" not in app.conf.broker_transport_options
    assert app.conf.worker_prefetch_multiplier == 4, "Celery's default"
    assert "reports" not in app.amqp.queues


def test_queue_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="delivery_limit"):
        queue_arguments(0)
    with pytest.raises(ValueError, match="consumer_timeout"):
        queue_arguments(3, consumer_timeout=0)
    assert queue_arguments(3, consumer_timeout=7200)["x-consumer-timeout"] == 7_200_000


def test_the_eta_of_a_delayed_call() -> None:
    rabbit = route(Celery("t", broker=AMQP, set_as_current=False), "reports")[0]
    now = time.time()
    assert rabbit._eta(now - 1) is None, "past: run now"
    assert rabbit._eta(now + 0.2).timestamp() >= now + MIN_DELAYED, "RabbitMQ: at least MIN_DELAYED ahead"
    assert rabbit._eta(now + 60).timestamp() == pytest.approx(now + 60)
    redis = route(Celery("t2", broker="redis://127.0.0.1:1/0", set_as_current=False), 2)[0]
    assert redis._eta(now + 0.2).timestamp() == pytest.approx(now + 0.2)
