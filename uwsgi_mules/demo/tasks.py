"""The demo's offloaded tasks and the driver that sends them.

Loaded by the demo's uWSGI instance (master, then forked workers and mules).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from uwsgi_mules import Farm, Mule, mule_offload
from uwsgi_mules.backends.selection import current_backend

DEMO_DIR_ENV = "UWSGIMULES_DEMO_DIR"
#: set (to seconds per task) by ``demo --stats``: tasks take that long and
#: publish their queues as uWSGI metrics, so there is something to watch
DEMO_SLOW_ENV = "UWSGIMULES_DEMO_TASK_SECONDS"
TASKS_PER_TARGET = 4

#: the queue each task is sent to, as named in the metrics
QUEUES = {"resize_image": "mule.1", "build_report": "farm.reports", "send_email": "mule.3"}
#: the metrics the demo declares for each queue (name -> uWSGI metric type)
QUEUE_METRICS = {"depth_messages": "gauge", "sent": "counter", "received": "counter"}


def metric_options() -> list[str]:
    """``--metric`` values declaring ``uwsgi_mules.QUEUE.METRIC`` for every demo queue."""
    return [
        f"name=uwsgi_mules.{queue}.{metric},type={kind}"
        for queue in QUEUES.values()
        for metric, kind in QUEUE_METRICS.items()
    ]


def _publishing() -> bool:
    return bool(os.environ.get(DEMO_SLOW_ENV))


def _count_sent(task: str) -> None:
    """Before sending: one more message sent to (and waiting in) the task's queue."""
    if _publishing():
        import uwsgi

        uwsgi.metric_inc(f"uwsgi_mules.{QUEUES[task]}.sent")
        uwsgi.metric_inc(f"uwsgi_mules.{QUEUES[task]}.depth_messages")


def _taken(task: str) -> None:
    """In the mule, as the task starts: one message left the queue; then work a while."""
    if _publishing():
        import uwsgi

        uwsgi.metric_dec(f"uwsgi_mules.{QUEUES[task]}.depth_messages")
        uwsgi.metric_inc(f"uwsgi_mules.{QUEUES[task]}.received")
        time.sleep(float(os.environ[DEMO_SLOW_ENV]))


def _results() -> Path:
    return Path(os.environ[DEMO_DIR_ENV]) / "results.jsonl"


def read_results(path: Path) -> list[dict[str, object]]:
    """The results mules have written so far; a line still being appended
    (no newline yet) is left for the next read."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def _done(task: str, number: int) -> None:
    mule = Mule.get_current_id()
    line = {"task": task, "number": number, "mule": mule, "pid": os.getpid()}
    print(f"  [mule {mule}, pid {os.getpid()}] ran {task}({number})", flush=True)
    fd = os.open(_results(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@Mule(1).offload()
def resize_image(number: int) -> None:
    """Runs on mule 1 (a programmed mule running uwsgi_mules.mule:run)."""
    _taken("resize_image")
    _done("resize_image", number)


@Farm("reports").offload()
def build_report(number: int) -> None:
    """Runs on any free mule of the farm "reports" (mules 1 and 2)."""
    _taken("build_report")
    _done("build_report", number)


@mule_offload(3)
def send_email(number: int) -> None:
    """Runs on mule 3, a signal-only mule (through uwsgi.mule_msg_hook)."""
    _taken("send_email")
    _done("send_email", number)


TASKS = (resize_image, build_report, send_email)


def drive() -> None:
    """In worker 1: offload every task, wait for the mules, stop uWSGI."""
    import uwsgi

    expected = TASKS_PER_TARGET * len(TASKS)
    time.sleep(0.5)  # let the mules start
    for number in range(TASKS_PER_TARGET):
        for task in TASKS:
            _count_sent(task.__name__)
            task(number)
    print(f"worker {current_backend().worker_id()} offloaded {expected} calls", flush=True)
    deadline = time.monotonic() + 30 + expected * float(os.environ.get(DEMO_SLOW_ENV) or 0)
    while time.monotonic() < deadline:
        if len(read_results(_results())) >= expected:
            break
        time.sleep(0.05)
    os.kill(uwsgi.masterpid(), signal.SIGTERM)


def start_driver_after_fork() -> None:
    """``uwsgi.post_fork_hook``: start the driver thread in worker 1 only."""
    if current_backend().worker_id() == 1:
        threading.Thread(target=drive, name="demo-driver", daemon=True).start()


def install() -> None:
    import uwsgi

    uwsgi.post_fork_hook = start_driver_after_fork

