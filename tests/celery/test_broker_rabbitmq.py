"""The Celery route on a private RabbitMQ node: a poison task ends as one
dead task after the delivery limit (and nothing else waits for it), and
countdown/ETA calls survive a broker restart (0 lost, 0 early)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.celery.conftest import require_celery
from tests.celery.workers import ROOT, CeleryWorker, ledger_counts, ledger_lines
from tests.support.rabbitmq_server import RabbitMQServer

pytestmark = [pytest.mark.rabbitmq, pytest.mark.xdist_group("celery-broker")]


@pytest.fixture
def rabbitmq(request: pytest.FixtureRequest) -> Iterator[RabbitMQServer]:
    require_celery()
    yield request.getfixturevalue("rabbitmq_node")


@pytest.fixture
def routed(rabbitmq: RabbitMQServer) -> Iterator[Any]:
    """This process routes like the workers (tests.celery.broker_app) to the node."""
    from celery import Celery

    from tests.celery.broker_app import POISON_DELIVERY_LIMIT
    from uwsgi_mules.contrib.celery import route, unroute

    app = Celery("rabbitmq_test", broker=rabbitmq.url, set_as_current=False)
    route(app, "later", send_timeout=60)
    route(app, "poison", send_timeout=60, delivery_limit=POISON_DELIVERY_LIMIT)
    try:
        yield app
    finally:
        unroute()


def wait_for(condition: Any, timeout: float, what: str, worker: CeleryWorker) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s:\n{worker.log_text()[-4000:]}"
        time.sleep(0.1)


def dead_cli(base: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "uwsgi_mules.cli", "dead", "--dir", str(base), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_poison_task_ends_as_one_dead_task_and_holds_nothing_up(
    tmp_path: Path, rabbitmq: RabbitMQServer, routed: Any
) -> None:
    from tests.celery.broker_app import POISON_DELIVERY_LIMIT
    from tests.celery.tasks import healthy, poison
    from uwsgi_mules.mule.delivery.dead import list_dead

    records, base = tmp_path / "records", tmp_path / "dead-base"
    records.mkdir()
    env = {"MULES_TEST_BROKER": rabbitmq.url, "MULES_TEST_DIR": str(records), "UWSGIMULES_BACKLOG_DIR": str(base)}
    worker = CeleryWorker(tmp_path, "p", env, ["poison"]).start()
    try:
        worker.wait_ready()
        poison(0)
        for n in range(40):
            healthy(n)
        wait_for(lambda: len(ledger_counts(records, "healthy")) == 40 and len(list_dead(base)) == 1, 90,
                 "40 healthy tasks and one dead task", worker)
        time.sleep(2.0)  # a loop would run the poison task again now
        runs = len(ledger_lines(records, "poison"))
        [dead] = list_dead(base)
        print(f"\npoison task: {runs} runs (delivery limit {POISON_DELIVERY_LIMIT}), then dead task {dead.id}: "
              f"{dead.error}; 40 healthy tasks run once each")
        assert ledger_counts(records, "healthy") == {n: 1 for n in range(40)}
        assert POISON_DELIVERY_LIMIT <= runs <= POISON_DELIVERY_LIMIT + 1, runs
        assert dead.path == "tests.celery.tasks:poison" and "poison(*(0,)" in dead.call
        assert "delivery" in dead.error and dead.target == b"poison"
        listed = dead_cli(base)
        assert dead.id in listed and "1 dead task(s)" in listed

        # re-sent: published to its route again by the worker, dead again after the limit
        assert "1 dead task(s) queued" in dead_cli(base, "--resend-all")
        wait_for(lambda: len(list_dead(base)) == 1 and list_dead(base)[0].id != dead.id, 60,
                 "the re-sent poison task dead again", worker)
        assert len(ledger_lines(records, "poison")) >= 2 * POISON_DELIVERY_LIMIT
    finally:
        worker.stop()


def test_countdown_and_eta_survive_a_broker_restart(tmp_path: Path, rabbitmq: RabbitMQServer, routed: Any) -> None:
    from tests.celery.tasks import punctual

    records = tmp_path / "records"
    records.mkdir()
    env = {"MULES_TEST_BROKER": rabbitmq.url, "MULES_TEST_DIR": str(records)}
    worker = CeleryWorker(tmp_path, "eta", env, ["later"]).start()
    total = 24
    try:
        worker.wait_ready()
        started = time.time()
        dues = {}
        for n in range(total):
            delay = 0.5 + n / 3  # 0.5 s to 8.2 s: some due before, during and after the restart
            if n % 2:
                dues[n] = time.time() + delay  # offload_in computes its own, slightly later, time
                punctual.offload_in(delay, n, dues[n])
            else:
                when = datetime.datetime.fromtimestamp(started + delay, tz=datetime.timezone.utc)
                dues[n] = when.timestamp()
                punctual.offload_at(when, n, dues[n])
        time.sleep(max(0.0, started + 3.0 - time.time()))
        down = rabbitmq.restart(kill=True)  # a crash: SIGKILL, then the same data directory
        wait_for(lambda: len({line.split()[0] for line in ledger_lines(records, "punctual")}) >= total,
                 60, f"{total} delayed calls", worker)
        time.sleep(2.0)  # a late duplicate shows up now
    finally:
        worker.stop()
    runs = [line.split() for line in ledger_lines(records, "punctual")]
    ran = {int(n): float(at) for n, _due, at in runs}
    counted = ledger_counts(records, "punctual")
    early = sorted(int(n) for n, due, at in runs if float(at) < float(due))
    late = max(float(at) - float(due) for _n, due, at in runs)
    duplicated = sorted(n for n, c in counted.items() if c > 1)
    print(f"\ncountdown/ETA across a broker crash-restart at 3 s (down {down:.1f}s): sent {total}, "
          f"executed {len(runs)}, lost {total - len(ran)}, early {len(early)}, duplicated {len(duplicated)}, "
          f"latest {late:.1f}s after its time")
    assert sorted(ran) == list(range(total)), "0 lost"
    assert early == [], f"ran before their time: {early}"


def test_results_and_the_failed_worker_on_rabbitmq(tmp_path: Path, rabbitmq: RabbitMQServer,
                                                    request: pytest.FixtureRequest) -> None:
    """``submit()`` on a RabbitMQ route (results in Redis): values, and a
    failure as ``CeleryTaskError`` naming the worker that ran it."""
    from celery import Celery

    from tests.celery.tasks import double, explode
    from uwsgi_mules.contrib.celery import CeleryTaskError, route, unroute

    redis_url = request.getfixturevalue("redis_url")
    records = tmp_path / "records"
    records.mkdir()
    env = {"MULES_TEST_BROKER": rabbitmq.url, "MULES_TEST_BACKEND": redis_url, "MULES_TEST_DIR": str(records)}
    worker = CeleryWorker(tmp_path, "res", env, ["results"]).start()
    app = Celery("rabbitmq_results", broker=rabbitmq.url, backend=redis_url, set_as_current=False)
    try:
        worker.wait_ready()
        route(app, "results", send_timeout=60)
        handles = [double.submit(n) for n in range(50)]
        assert [h.result(timeout=60) for h in handles] == [2 * n for n in range(50)]
        with pytest.raises(CeleryTaskError) as info:
            explode.submit("on rabbitmq").result(timeout=60)
    finally:
        unroute()
        worker.stop()
    assert (info.value.remote_type, info.value.remote_message) == ("ValueError", "on rabbitmq")
    assert info.value.worker == "resg1@localhost", info.value.worker
