"""``/percall?batches=N&mule=PID``: interleaved batches of 100
``work.enqueue()`` and 100 plain offloads, timed in this worker while the
mule is paused (SIGSTOP: nothing competes, 100 messages fit the queue, as in
bench/run.py); the mule is resumed between batches and empties the queue
(the last task of a batch is awaited through its result)."""

from __future__ import annotations

import os
import signal
import statistics
import time
from time import perf_counter_ns

from django.http import HttpRequest, JsonResponse
from django.urls import path

from . import mules, tasks

BATCH = 100
ARG = "order-1234567890"


def _drained(last_id: str | None) -> None:
    if last_id is None:
        time.sleep(0.005)
        return
    deadline = time.monotonic() + 10
    while tasks.work.get_result(last_id).status != "SUCCESSFUL" and time.monotonic() < deadline:
        time.sleep(0.001)


def percall(request: HttpRequest) -> JsonResponse:
    batches = int(request.GET.get("batches", "200"))
    mule = int(request.GET["mule"])
    enqueue_ns: list[float] = []
    offload_ns: list[float] = []
    enqueue, offload = tasks.work.enqueue, mules.work
    for b in range(batches + 5):  # 5 rounds of warm-up
        os.kill(mule, signal.SIGSTOP)
        start = perf_counter_ns()
        for i in range(BATCH):
            offload(i, ARG)
        spent = perf_counter_ns() - start
        os.kill(mule, signal.SIGCONT)
        if b >= 5:
            offload_ns.append(spent / BATCH)
        _drained(None)
        os.kill(mule, signal.SIGSTOP)
        start = perf_counter_ns()
        for i in range(BATCH):
            last = enqueue(i, ARG)
        spent = perf_counter_ns() - start
        os.kill(mule, signal.SIGCONT)
        if b >= 5:
            enqueue_ns.append(spent / BATCH)
        _drained(last.id)
    return JsonResponse({
        "batches": batches,
        "offload_us": statistics.median(offload_ns) / 1000,
        "enqueue_us": statistics.median(enqueue_ns) / 1000,
    })


urlpatterns = [path("percall", percall)]
