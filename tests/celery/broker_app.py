"""The Celery app of the broker tests: ``celery -A tests.celery.broker_app worker``.

The broker is ``MULES_TEST_BROKER`` (the test's private RabbitMQ node or
redis-server), the result backend ``MULES_TEST_BACKEND`` when set. Farms
``durable`` (the kill test), ``poison`` (delivery limit 3), ``later``
(countdown/ETA) and ``results`` are routed to queues of the same names; on
RabbitMQ, ``route()`` applies the safe settings.
"""

from __future__ import annotations

import os

from celery import Celery

import tests.celery.tasks  # noqa: F401 - decorates the offloaded functions
from uwsgi_mules.contrib.celery import install, route

#: deliveries of a poison task before RabbitMQ dead-letters it
POISON_DELIVERY_LIMIT = 3
#: the Redis transport's visibility timeout in these tests (seconds)
VISIBILITY_TIMEOUT = 6

broker = os.environ.get("MULES_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
app = Celery("uwsgi_mules_broker", broker=broker, backend=os.environ.get("MULES_TEST_BACKEND") or None,
             set_as_current=False)
app.conf.update(
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    result_expires=600,
)
if broker.startswith("redis"):
    app.conf.update(
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            "unacked_restore_limit": 100,
        },
    )
install(app)
route(app, "durable", "later", "results", send_timeout=60)
route(app, "poison", send_timeout=60, delivery_limit=POISON_DELIVERY_LIMIT)
