"""Routes to Celery: per-call cost and end-to-end throughput, on Redis and on RabbitMQ.

    python bench/celery_bench.py [--broker redis|rabbitmq|both] [--calls N] [--tasks N] [--json FILE]

Starts a private ``redis-server`` (Debian package) and a private RabbitMQ
node (Debian's ``rabbitmq-server``, as the tests run it) on free loopback
ports and always stops them; each broker is measured in a process of its
own. Measures:

* per call: a routed offload (``um_work(i, s)`` on a route) against Celery's
  own ``task.delay(i, s)`` on the same app, broker and queue (on RabbitMQ:
  the route's quorum queue with publisher confirms, for both), in this
  process, interleaved batches of 100 with nobody consuming (the queue is
  emptied between rounds);
* end to end: ``--tasks`` routed offloads sent from this process, consumed
  by one uWSGI instance (the ``uwsgi`` command of this environment) with 2
  mules running ``uwsgi_mules.contrib.celery.mule:run``; tasks/s from the
  first send until every task has run (each appends a line to a file).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_server(workdir: Path):
    command = shutil.which("redis-server")
    if command is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [command, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def rabbitmq_node(workdir: Path):
    from tests.support.rabbitmq_server import RabbitMQServer, rabbitmq_scripts

    scripts = rabbitmq_scripts()
    if scripts is None:
        raise SystemExit("rabbitmq-server is not installed (Debian package rabbitmq-server)")
    with RabbitMQServer(workdir / "rabbitmq", scripts) as node:
        yield node.url


def purge(app, queues: tuple[str, ...]) -> None:
    """Empty ``queues`` (nobody consumes during the per-call rounds)."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)


def per_call(calls: int, batch: int = 100) -> dict:
    from bench.apps import celery_app as bench_app

    routed = bench_app.um_work
    delay = bench_app.celery_work.delay
    payload = "order-1234567890"
    routed(0, payload)  # warm-up: connections, declarations
    delay(0, payload)
    samples: dict[str, list[float]] = {"route": [], "delay": []}
    for _ in range(max(1, calls // batch)):
        for name, func in (("route", routed), ("delay", delay)):
            t0 = time.perf_counter_ns()
            for i in range(batch):
                func(i, payload)
            samples[name].append((time.perf_counter_ns() - t0) / batch / 1000)
        purge(bench_app.app, ("reports", "celery"))
    route_us = statistics.median(samples["route"])
    delay_us = statistics.median(samples["delay"])
    return {"route_us": route_us, "delay_us": delay_us, "ratio": route_us / delay_us, "calls": calls}


def end_to_end(url: str, tasks: int, workdir: Path) -> dict:
    from bench.apps import celery_app as bench_app

    uwsgi = Path(sys.executable).parent / "uwsgi"
    if not uwsgi.exists():
        return {"skipped": "no uwsgi command in this environment"}
    done_dir = workdir / "done"
    done_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        BENCH_BROKER=url, BENCH_ROUTE="1", BENCH_DIR=str(done_dir),
        UWSGIMULES_CELERY_APP="bench.apps.celery_app:app",
    )
    argv = [str(uwsgi), "--master", "--die-on-term", "--strict", "--import", "bench.apps.celery_app",
            "--mule=uwsgi_mules.contrib.celery.mule:run", "--mule=uwsgi_mules.contrib.celery.mule:run",
            "--farm=reports:1,2", "--disable-logging", "--http-socket", f"127.0.0.1:{free_port()}"]
    log = open(workdir / "consumer.log", "wb")
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(3)  # the Celery workers connect
        payload_count = bench_app.um_count
        start = time.perf_counter()
        for i in range(tasks):
            payload_count(i)
        sent = time.perf_counter() - start
        deadline = time.monotonic() + 600
        while True:
            executed = sum(p.stat().st_size // 2 for p in done_dir.glob("done-*.txt"))
            if executed >= tasks:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{executed} of {tasks} ran:\n{(workdir / 'consumer.log').read_text()[-3000:]}")
            time.sleep(0.01)
        total = time.perf_counter() - start
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()
    prefetch = 4 if url.startswith("redis") else 1
    return {"tasks": tasks, "send_per_s": tasks / sent, "tasks_per_s": tasks / total, "seconds": total,
            "consumers": f"1 uWSGI instance, 2 Celery mules (solo pool), prefetch {prefetch}"}


def machine(broker: str) -> str:
    cpus = os.cpu_count()
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import celery
    import kombu

    if broker == "redis":
        version = "Redis " + subprocess.run(["redis-server", "--version"], capture_output=True,
                                            text=True).stdout.split()[2][2:]
    else:
        version = "RabbitMQ " + subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                                               capture_output=True, text=True).stdout.split("-")[0]
    return (f"{model or platform.processor()}, {cpus} vCPU, Python {platform.python_version()}, "
            f"Celery {celery.__version__}, kombu {kombu.__version__}, {version}")


def measure(broker: str, calls: int, tasks: int) -> dict:
    """Both measurements on one broker, in this process."""
    server = redis_server if broker == "redis" else rabbitmq_node
    with tempfile.TemporaryDirectory(prefix="uwsgi-mules-celery-bench-") as tmp, server(Path(tmp)) as url:
        os.environ["BENCH_BROKER"] = url
        os.environ["BENCH_ROUTE"] = "1"
        os.environ["BENCH_DIR"] = tmp
        return {"broker": broker, "machine": machine(broker), "per_call": per_call(calls),
                "end_to_end": end_to_end(url, tasks, Path(tmp))}


def report(results: dict) -> None:
    pc, e2e = results["per_call"], results["end_to_end"]
    print(f"{results['broker']}: {results['machine']}")
    print("| per call (median of batches of 100) | µs |")
    print("| --- | ---: |")
    print(f"| Celery `task.delay()` | {pc['delay_us']:.1f} |")
    print(f"| routed offload (`@Farm(...).offload()` + `route()`) | {pc['route_us']:.1f} |")
    print(f"| ratio (target <= 1.2) | {pc['ratio']:.2f} |")
    if "skipped" in e2e:
        print(f"end to end: skipped ({e2e['skipped']})")
    else:
        print(f"end to end: {e2e['tasks']} routed offloads, {e2e['consumers']}: sent at {e2e['send_per_s']:.0f}/s, "
              f"all executed at {e2e['tasks_per_s']:.0f} tasks/s ({e2e['seconds']:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="both")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--json")
    options = parser.parse_args()
    if options.broker != "both":
        results = measure(options.broker, options.calls, options.tasks)
        report(results)
        if options.json:
            Path(options.json).write_text(json.dumps(results, indent=2))
        return
    found = {}
    with tempfile.TemporaryDirectory(prefix="uwsgi-mules-celery-bench-") as tmp:
        for broker in ("redis", "rabbitmq"):  # one process each: the bench app reads its broker at import
            out = Path(tmp) / f"{broker}.json"
            subprocess.run([sys.executable, __file__, "--broker", broker, "--calls", str(options.calls),
                            "--tasks", str(options.tasks), "--json", str(out)], check=True)
            found[broker] = json.loads(out.read_text())
    if options.json:
        Path(options.json).write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
