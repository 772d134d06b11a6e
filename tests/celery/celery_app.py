"""The Celery app of the real-uWSGI tests (``UWSGIMULES_CELERY_APP=tests.celery.celery_app:app``).

The broker and result backend are the test's private redis-server
(``MULES_TEST_REDIS``). ``MULES_TEST_ROUTE=1`` routes farm ``reports`` to
Celery; without it the same application runs on local mules.

A consumer killed mid-task leaves its reserved messages unacknowledged;
Redis hands them out again once they are older than ``visibility_timeout``
(1 hour by default): the test lowers it to a few seconds and sweeps every
second.
"""

from __future__ import annotations

import os

from celery import Celery

from uwsgi_mules.contrib.celery import install, route

VISIBILITY_TIMEOUT = 6

url = os.environ.get("MULES_TEST_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("uwsgi_mules_real", broker=url, backend=url, set_as_current=False)
app.conf.update(
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        "unacked_restore_limit": 100,
    },
)
install(app)
if os.environ.get("MULES_TEST_ROUTE") == "1":
    route(app, "reports")
