"""The Celery app of bench/celery_bench.py (broker: ``BENCH_BROKER``, else
``BENCH_REDIS``, which is also the result backend when set).

On RabbitMQ ``route()`` applies the safe settings (confirms, a quorum queue,
prefetch 1...); Celery's own task publishes to the same queue, so both pay
for the same broker work."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

from uwsgi_mules import Farm
from uwsgi_mules.contrib.celery import install, route

url = os.environ.get("BENCH_BROKER") or os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
redis = url.startswith("redis")
app = Celery("uwsgi_mules_bench", broker=url, backend=url if redis else None, set_as_current=False)
app.conf.update(worker_hijack_root_logger=False, task_routes={"bench.celery_work": {"queue": "reports"}})
if redis:
    app.conf.worker_prefetch_multiplier = 4
install(app)


@app.task(name="bench.celery_work", ignore_result=True)
def celery_work(i: int, s: str) -> None:
    """Celery's own task (``.delay()``), the reference of the per-call cost."""


@Farm("reports").offload()
def um_work(i: int, s: str) -> None:
    """The same call through a uwsgi-mules route."""


@Farm("reports").offload()
def um_count(i: int) -> None:
    """End to end: each consumer process appends one line per task."""
    with open(Path(os.environ["BENCH_DIR"]) / f"done-{os.getpid()}.txt", "a") as fh:
        fh.write("1\n")


if os.environ.get("BENCH_ROUTE") == "1":
    route(app, "reports")
