"""The safe settings of a Celery route on RabbitMQ (an ``amqp://`` broker).

:func:`apply_safe_settings` (called by ``route()`` when the app's broker is
RabbitMQ) sets, where the app does not set them itself:

- ``task_acks_late`` and ``task_reject_on_worker_lost``: a message is
  acknowledged after the task returned; a worker (or its pool process)
  killed mid-task gives it back to the broker, which redelivers it at once;
- ``broker_transport_options["confirm_publish"]``: a publish returns once
  RabbitMQ confirmed it (else a message the broker drops is lost silently);
- ``worker_prefetch_multiplier = 1``: a worker holds one message per pool
  process beyond what it runs (what a killed worker held is redelivered);
- the route's queue as a durable **quorum queue** (replicated, kept on disk,
  survives a broker restart) on a topic exchange (needed by kombu's native
  delayed delivery: countdown/ETA wait in RabbitMQ, not in a worker) with
  ``x-delivery-limit``: a message delivered more often (a task that kills
  its worker every time) is dead-lettered, at least once, to the exchange
  :data:`DEAD_LETTER_EXCHANGE` and its queue :data:`DEAD_LETTER_QUEUE`,
  where :mod:`.dead_letters` turns it into a dead-task record
  (``uwsgi-mules dead``) instead of a redelivery loop.

RabbitMQ's ``consumer_timeout`` (30 minutes by default: a consumer holding an
unacknowledged message longer has its channel closed and the message is
redelivered) must stay above the longest task, ETA waits held by a worker
included. Before RabbitMQ 3.12 it is a server setting only
(``consumer_timeout = 7200000`` in ``rabbitmq.conf``); from 3.12 on
``route(..., consumer_timeout=seconds)`` sets it for the queue
(``x-consumer-timeout``).
"""

from __future__ import annotations

from typing import Any

from .app_conf import set_default

#: broker URL schemes of RabbitMQ (kombu's py-amqp and librabbitmq transports)
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq")
#: deliveries of one message before it is dead-lettered (RabbitMQ 4's default is 20)
DEFAULT_DELIVERY_LIMIT = 10
#: where RabbitMQ dead-letters a message past its delivery limit
DEAD_LETTER_EXCHANGE = "uwsgi_mules.dead"
DEAD_LETTER_QUEUE = "uwsgi_mules.dead"

#: the Celery settings applied unless the app sets them itself
SAFE_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


def is_rabbitmq(app: Any) -> bool:
    """True when the app's broker URL is RabbitMQ (``amqp://``, ``amqps://``...)."""
    url = app.conf.broker_url or app.conf.broker_read_url or ""
    first = str(url).split(";")[0].strip()
    return first.split("://", 1)[0].lower() in AMQP_SCHEMES if "://" in first else False


def queue_arguments(delivery_limit: int, consumer_timeout: float | None = None) -> dict[str, Any]:
    """The ``x-`` arguments of a route's quorum queue."""
    if delivery_limit < 1:
        raise ValueError(f"delivery_limit must be at least 1, got {delivery_limit!r}")
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-delivery-limit": int(delivery_limit),
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # at-least-once dead-lettering needs it
    }
    if consumer_timeout is not None:
        if consumer_timeout <= 0:
            raise ValueError(f"consumer_timeout must be positive seconds, got {consumer_timeout!r}")
        arguments["x-consumer-timeout"] = int(consumer_timeout * 1000)
    return arguments


def work_queue(name: str, delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
               consumer_timeout: float | None = None) -> Any:
    """The route's durable quorum queue ``name`` on the topic exchange ``name``."""
    from kombu import Exchange, Queue

    return Queue(
        name, Exchange(name, type="topic", durable=True), routing_key=name, durable=True,
        queue_arguments=queue_arguments(delivery_limit, consumer_timeout),
    )


def dead_letter_queue() -> Any:
    """The quorum queue that collects the messages past their delivery limit."""
    from kombu import Exchange, Queue

    return Queue(
        DEAD_LETTER_QUEUE, Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True), routing_key="#",
        durable=True, queue_arguments={"x-queue-type": "quorum"},
    )


def apply_safe_settings(app: Any, queue: str, *, delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
                        consumer_timeout: float | None = None) -> list[str]:
    """Apply the safe settings to ``app`` for the route's ``queue`` where the
    app does not set them; returns the names of the settings applied.

    A ``queue`` the app already declares in ``task_queues`` is kept as the app
    declares it. Call it (through ``route()``) in the module that creates the
    app, so the workers declare and consume the same queues.
    """
    applied = []
    for key, value in SAFE_SETTINGS.items():
        if set_default(app, key, value):
            applied.append(key)
    options = app.conf.broker_transport_options
    if options is None:
        app.conf.broker_transport_options = options = {}
    if "confirm_publish" not in options:
        options["confirm_publish"] = True
        applied.append("broker_transport_options.confirm_publish")
    queues = app.amqp.queues  # the app's task_queues (or its default queue), as its workers see them
    if queue not in queues:
        queues.add(work_queue(queue, delivery_limit, consumer_timeout))
        applied.append(f"queue {queue!r}")
    return applied
