"""The Celery app of bench/celery_bench.py (broker and backend: ``BENCH_REDIS``)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

from uwsgi_mules import Farm
from uwsgi_mules.contrib.celery import install, route

url = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("uwsgi_mules_bench", broker=url, backend=url, set_as_current=False)
app.conf.update(worker_prefetch_multiplier=4, worker_hijack_root_logger=False)
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
