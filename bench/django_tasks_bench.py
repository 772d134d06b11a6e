"""Django tasks: ``task.enqueue()`` per call against a plain offload.

    python bench/django_tasks_bench.py [--batches N]

Needs Django 6 (Python >= 3.12) and the ``uwsgi`` command (binary or
pyuwsgi) in the running interpreter's environment, e.g. the ``django61``
tox env's interpreter. Renders the INI of ``bench.apps.django_tasks`` with
``manage.py uwsgi_mules_ini``, starts it (``--strict``, 1 worker, 1 Django
mule, always stopped), and asks the worker for ``/percall``: interleaved
batches of 100 ``work.enqueue(i, s)`` (``MulesBackend``: JSON check, READY
result in the cache, signed message) and 100 ``work(i, s)`` of an
``@offload(0)`` function, to the shared queue, timed while the mule is
paused (SIGSTOP, as bench/run.py does); the mule empties the queue between
batches. Reports the median per call and the ratio (target: <= 1.5x).

For scale, the same run times Django's own ``DummyBackend.enqueue()`` (it
only records the result in memory: what every backend pays for Django's
``TaskResult`` and signal) in a child process of this interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = "bench.apps.django_tasks.settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DUMMY_FLOOR = """
import statistics, sys, time
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=[], USE_TZ=True,
                   TASKS={"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}})
django.setup()
from django.tasks import default_task_backend, task

@task
def work(i, s):
    return i

runs = []
for _ in range(int(sys.argv[1])):
    start = time.perf_counter()
    for i in range(100):
        work.enqueue(i, "order-1234567890")
    runs.append((time.perf_counter() - start) / 100)
    default_task_backend.clear()
print(statistics.median(runs) * 1e6)
"""


def dummy_backend_us(batches: int) -> float:
    """Median per ``enqueue()`` of Django's ``DummyBackend``, in microseconds."""
    done = subprocess.run([sys.executable, "-c", DUMMY_FLOOR, str(batches)], capture_output=True, text=True,
                          check=True, timeout=600, env={k: v for k, v in os.environ.items()
                                                         if k != "DJANGO_SETTINGS_MODULE"})
    return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    opts = parser.parse_args(argv)
    uwsgi = Path(sys.executable).parent / "uwsgi"
    if not uwsgi.exists():
        raise SystemExit(f"no uwsgi command next to {sys.executable}")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env.update(BENCH_PORT=str(port), DJANGO_SETTINGS_MODULE=SETTINGS, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory(prefix="django-tasks-bench-") as tmp:
        ini = Path(tmp) / "bench.ini"
        subprocess.run([sys.executable, "-m", "django", "uwsgi_mules_ini", "--settings", SETTINGS, "-o", str(ini)],
                       cwd=REPO, env=env, check=True, timeout=120, capture_output=True)
        log = open(Path(tmp) / "uwsgi.log", "wb")
        server = subprocess.Popen([str(uwsgi), "--ini", str(ini), "--strict", "--die-on-term"], cwd=REPO, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            mule = None
            while mule is None:
                found = re.search(r"spawned uWSGI mule 1 \(pid: (\d+)\)", (Path(tmp) / "uwsgi.log").read_text())
                if found:
                    mule = int(found.group(1))
                elif time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((Path(tmp) / "uwsgi.log").read_text(errors="replace"))
                time.sleep(0.1)
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/percall?batches={opts.batches}&mule={mule}",
                                                timeout=600) as response:
                        result = json.loads(response.read())
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit((Path(tmp) / "uwsgi.log").read_text(errors="replace"))
                    time.sleep(0.2)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
            log.close()
    ratio = result["enqueue_us"] / result["offload_us"]
    print(f"uwsgi: {uwsgi} ({'pyuwsgi' if uwsgi.read_bytes()[:2] == b'#!' else 'binary'}), "
          f"{result['batches']} batches of 100")
    print(f"plain offload  {result['offload_us']:8.2f} us/call")
    print(f"enqueue()      {result['enqueue_us']:8.2f} us/call   {ratio:.2f}x the plain offload (target <= 1.5x)")
    dummy = dummy_backend_us(opts.batches)
    print(f"Django's DummyBackend.enqueue() {dummy:8.2f} us/call   (MulesBackend: {result['enqueue_us'] / dummy:.2f}x it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
