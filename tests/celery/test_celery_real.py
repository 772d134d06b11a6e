"""Routes to Celery on real uWSGI: two consumer instances (two "machines")
with Celery-hosting mules, a third instance sending, one consumer SIGKILLed
mid-burst; the same app unrouted on local mules; submit() results."""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.celery.conftest import RedisServer, require_celery
from tests.conftest import require_real_uwsgi
from tests.support.calls import run_concurrently
from tests.support.server import UwsgiServer
from uwsgi_mules.layout.caches import RESULTS_CACHE, CacheSpec
from uwsgi_mules.core.registry import function_path
from uwsgi_mules.layout.topology import Topology

# one test process runs these one after the other (tox runs tests in parallel,
# with --dist loadgroup here): each keeps both cores busy with uWSGI, Celery and Redis
pytestmark = [pytest.mark.real, pytest.mark.xdist_group("celery-real")]

CELERY_MULE = "uwsgi_mules.contrib.celery.mule:run"
LOCAL_MULE = "uwsgi_mules.mule:run"
APP = "tests.celery.app:application"


def start_instance(
    workdir: Path, records: Path, redis: RedisServer, *, mules: list[str | None], route: bool,
    processes: int = 1, extra: list[str] | None = None, pause: float = 0.0, env: dict[str, str] | None = None,
) -> UwsgiServer:
    """A uWSGI instance of the test app; mules in farm ``reports``."""
    args = ["--module", APP, "--processes", str(processes)]
    args += ["--mule=" + m if m else "--mule" for m in mules]
    if mules:
        topology = Topology.build(mules, {"reports": list(range(1, len(mules) + 1))})
        args += ["--farm=" + f.option_value() for f in topology.farms]
        args += ["--env", f"UWSGIMULES_TOPOLOGY={topology.to_env_value()}"]
    args += extra or []
    env = {
        **(env or {}),
        "MULES_TEST_REDIS": redis.url,
        "MULES_TEST_ROUTE": "1" if route else "0",
        "UWSGIMULES_CELERY_APP": "tests.celery.celery_app:app",
        "MULES_TEST_DIR": str(records),
        "MULES_TEST_PAUSE": str(pause),
    }
    server = UwsgiServer(workdir, args, env=env, start_timeout=60)
    server.start()
    return server


def call(server: UwsgiServer, func: Any, *args: Any, timeout: float = 180) -> Any:
    body = pickle.dumps((function_path(func), args, {}))
    request = urllib.request.Request(server.base_url + "/call", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status, value = pickle.loads(response.read())
    if status == "err":
        raise value
    return value


def executions(records: Path) -> dict[int, list[int]]:
    """pid -> task numbers that process executed (partial last lines ignored)."""
    found: dict[int, list[int]] = {}
    directory = records / "records"
    if not directory.exists():
        return found
    for path in directory.glob("executed-*.txt"):
        pid = int(path.stem.split("-")[1])
        text = path.read_text()
        lines = text.split("\n")[:-1]  # the text after the last newline may be half written
        found[pid] = [int(line) for line in lines if line]
    return found


def busy_tasks(records: Path, pids: set[int]) -> set[int]:
    """Tasks the mules ``pids`` are executing now (see ``tasks.record``)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            found.add(int((records / "records" / f"busy-{pid}.txt").read_text()))
    return found


def mule_pids(server: UwsgiServer) -> set[int]:
    pids = set()
    for line in server.log_text().splitlines():
        if line.startswith("spawned uWSGI mule "):
            pids.add(int(line.split("pid: ")[1].rstrip(")")))
    return pids


@pytest.fixture
def redis(request: pytest.FixtureRequest) -> RedisServer:
    require_real_uwsgi()
    require_celery()
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return server


@pytest.fixture
def servers() -> Iterator[list[UwsgiServer]]:
    started: list[UwsgiServer] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def wait_until_busy(victim: UwsgiServer, records: Path, victim_mules: Any) -> set[int]:
    """Wait until the victim ran 20 tasks and each of its mules is inside one; the tasks in flight."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = executions(records)
        if sum(len(v) for p, v in done.items() if p in victim_mules) >= 20:
            in_flight = busy_tasks(records, victim_mules)
            if len(in_flight) == len(victim_mules):
                return in_flight
        time.sleep(0.001)
    pytest.fail(f"the victim instance did not get busy:\n{victim.log_text()[-3000:]}")


def wait_for_all(records: Path, total: int, sent_at: float) -> Any:
    """The executions once every task ran (or the time is up), and a second more for a late duplicate.
    The live instance drains what is left at about the rate it was sent: on a
    busy machine, sending slows down and so does draining; wait in proportion."""
    deadline = time.monotonic() + max(90.0, 2 * sent_at)
    while time.monotonic() < deadline:
        done = executions(records)
        if len({n for values in done.values() for n in values}) >= total:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # a late duplicate would show up now
    return executions(records)


def test_two_consumer_instances_one_sigkilled_mid_burst_lose_nothing(
    tmp_path: Path, redis: RedisServer, servers: list[UwsgiServer]
) -> None:
    total, senders = 20_000, 2
    records = tmp_path / "shared"
    records.mkdir()
    # the victim's tasks take 50 ms: it is killed while both its mules are inside a task
    victim = start_instance(tmp_path / "a", records, redis, mules=[CELERY_MULE, CELERY_MULE], route=True, pause=0.05)
    servers.append(victim)
    servers.append(start_instance(tmp_path / "b", records, redis, mules=[CELERY_MULE, CELERY_MULE], route=True))
    producer = start_instance(tmp_path / "c", records, redis, mules=[], route=True, processes=senders)
    servers.append(producer)
    victim_mules = mule_pids(victim)

    started = time.monotonic()
    sent: list[Any] = []
    per_sender = total // senders
    sender = threading.Thread(
        target=lambda: sent.extend(
            run_concurrently(
                [(lambda s: call(producer, send_records, s, per_sender), (i * per_sender,)) for i in range(senders)],
                lambda worker, func, args: func(*args),
            )
        )
    )
    sender.start()
    in_flight = wait_until_busy(victim, records, victim_mules)  # kill the victim mid-burst, inside a task
    assert victim.process is not None
    os.killpg(victim.process.pid, signal.SIGKILL)
    killed_at = time.monotonic() - started
    victim.process.wait(10)
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url)
    unacked_at_kill = client.hlen("unacked")  # the victim's reserved tasks (and the live consumers')
    sender.join(120)
    assert sent == [per_sender] * senders, "every send returned once the broker had the task"
    sent_at = time.monotonic() - started

    done = wait_for_all(records, total, sent_at)
    counts = collections.Counter(n for values in done.values() for n in values)
    lost = sorted(set(range(total)) - set(counts))
    duplicated = sorted(n for n, c in counts.items() if c > 1)
    by_victim = sum(len(v) for p, v in done.items() if p in victim_mules)
    print(
        f"\nCelery route, 2 consumer instances x 2 mules, 1 SIGKILLed at {killed_at:.1f}s (in flight there: "
        f"{sorted(in_flight)}; {unacked_at_kill} unacknowledged in Redis): sent {total} (all sent at {sent_at:.1f}s), "
        f"executed {sum(counts.values())} "
        f"({len(counts)} distinct; {by_victim} by the killed instance), lost {len(lost)}, duplicated "
        f"{len(duplicated)} {duplicated[:10]}, done at {time.monotonic() - started:.1f}s"
    )
    assert not lost, f"lost {len(lost)} tasks: {lost[:20]}"
    # a duplicate is a task the killed instance was running and could not
    # acknowledge: only the tasks in flight at the kill
    assert set(duplicated) <= in_flight, f"duplicates beyond the tasks in flight at the kill: {duplicated}"
    for n in in_flight:  # killed mid-task: redelivered to the live instance after the visibility timeout
        assert any(n in v for p, v in done.items() if p not in victim_mules), f"in-flight task {n} not redelivered"
    assert client.llen("reports") == 0 and client.hlen("unacked") == 0, "every task acknowledged in the end"


def test_same_application_without_the_route_runs_on_local_mules(
    tmp_path: Path, redis: RedisServer, servers: list[UwsgiServer]
) -> None:
    records = tmp_path / "records-dir"
    records.mkdir()
    server = start_instance(tmp_path / "local", records, redis, mules=[LOCAL_MULE, LOCAL_MULE], route=False)
    servers.append(server)
    assert call(server, send_records, 0, 2000) == 2000
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(len(v) for v in executions(records).values()) < 2000:
        time.sleep(0.05)
    done = executions(records)
    assert sorted(n for v in done.values() for n in v) == list(range(2000))
    assert set(done) <= mule_pids(server), "executed by the local mules"
    import redis as redis_py

    assert redis_py.Redis.from_url(redis.url).llen("reports") == 0, "nothing went to Celery"


def test_submit_results_local_and_routed(tmp_path: Path, redis: RedisServer, servers: list[UwsgiServer]) -> None:
    records = tmp_path / "r"
    records.mkdir()
    cache = ["--" + "cache2=" + CacheSpec(RESULTS_CACHE, 1100, 4096).option_value()]
    local = start_instance(tmp_path / "local", records, redis, mules=[LOCAL_MULE, LOCAL_MULE], route=False,
                           extra=cache)
    servers.append(local)
    consumer = start_instance(tmp_path / "consumer", records, redis, mules=[CELERY_MULE, CELERY_MULE], route=True)
    servers.append(consumer)
    producer = start_instance(tmp_path / "producer", records, redis, mules=[], route=True)
    servers.append(producer)

    assert call(local, submit_adds, 0, 1000) == [2 * n for n in range(1000)]
    assert call(producer, submit_adds, 1000, 1000) == [2 * n for n in range(1000, 2000)]
    for server in (local, producer):
        remote_type, message, text = call(server, submit_fail, "lost key")
        assert (remote_type, message) == ("KeyError", "'lost key'")
        assert "raise KeyError(message)" in text


def test_raw_cache_semantics_match_the_fake(tmp_path: Path, redis: RedisServer, servers: list[UwsgiServer]) -> None:
    from uwsgi_mules.fake import FakeUwsgi

    spec = "name=c,items=3,blocksize=8"
    server = start_instance(tmp_path / "cache", tmp_path, redis, mules=[], route=False, extra=["--cache2=" + spec])
    servers.append(server)
    real = call(server, cache_scenario)
    with FakeUwsgi(1, caches=[spec]):
        fake = cache_scenario()
    assert real == fake


def cache_scenario() -> list[Any]:
    """Raw cache calls through the backend (run in a real worker and on the fake)."""
    from uwsgi_mules.backends.selection import current_backend

    b = current_backend()
    out: list[Any] = [
        b.cache_set("k", b"v"), b.cache_set("k", b"w"), b.cache_update("k", b"w"), b.cache_get("k"),
        b.cache_get("k", "c"), b.cache_set("big", b"123456789", 0, "c"), b.cache_set("k2", b"v", 0, "c"),
        b.cache_set("k3", b"v", 0, "c"), b.cache_exists("k3", "c"), b.cache_exists("k2", "c"),
        b.cache_del("k2", "c"), b.cache_del("k2", "c"), b.cache_get("k", "nope"), b.cache_set("x", b"v", 0, "nope"),
        sorted(b.cache_keys("c")),
    ]
    try:
        b.cache_keys("nope")
    except ValueError as exc:
        out.append(str(exc))
    return out


# functions the tests run in uWSGI workers (resolved by path there)
from tests.celery.tasks import send_records, submit_adds, submit_fail  # noqa: E402


def test_uwsgi_reload_is_a_celery_warm_shutdown(tmp_path: Path, redis: RedisServer, servers: list[UwsgiServer]) -> None:
    """Reloading the mules (``touch-mules-reload``: uWSGI sends SIGHUP to
    mules, as in a graceful reload) lets the running task finish, once; the
    respawned mule consumes again. (A full reload re-executes the binary,
    which pyuwsgi's launcher cannot do; the mules get the same SIGHUP.)"""
    from celery import Celery

    from uwsgi_mules.contrib.celery import route, unroute

    records = tmp_path / "r"
    records.mkdir()
    trigger = tmp_path / "reload-mules"
    trigger.write_text("")
    server = start_instance(
        tmp_path / "consumer", records, redis, mules=[CELERY_MULE], route=True, pause=1.5,
        extra=["--touch-mules-reload", str(trigger)],
    )
    servers.append(server)
    (old_pid,) = mule_pids(server)
    app = Celery("reload_test", broker=redis.url, backend=redis.url, set_as_current=False)
    route(app, "reports")
    try:
        send_records(7, 1)  # from this process: no uWSGI here, the route sends it
        deadline = time.monotonic() + 60
        while busy_tasks(records, {old_pid}) != {7}:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.01)
        deadline = time.monotonic() + 60
        bump = 0
        while len(mule_pids(server)) < 2:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            if "has been touched" not in server.log_text():
                # the master stats the file about once a second (the first stat only records it)
                bump += 1
                os.utime(trigger, (time.time() + bump, time.time() + bump))
            time.sleep(0.5)
        assert executions(records).get(old_pid) == [7], "the running task finished before the mule exited"
        send_records(8, 1)
        new_pid = (mule_pids(server) - {old_pid}).pop()
        deadline = time.monotonic() + 60
        while executions(records).get(new_pid) != [8]:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.05)
        time.sleep(7)  # past the visibility timeout: a task left unacknowledged would run again
        done = executions(records)
        assert sorted(n for v in done.values() for n in v) == [7, 8], done
        assert "Warm shutdown" in server.log_text() or "warm shutdown" in server.log_text().lower()
    finally:
        unroute()


def test_harakiri_kills_a_stuck_celery_mule_and_uwsgi_respawns_it(
    tmp_path: Path, redis: RedisServer, servers: list[UwsgiServer]
) -> None:
    from celery import Celery

    from uwsgi_mules.contrib.celery import route, unroute

    records = tmp_path / "r"
    records.mkdir()
    server = start_instance(
        tmp_path / "consumer", records, redis, mules=[CELERY_MULE], route=True, pause=60,
        env={"UWSGIMULES_CELERY_HARAKIRI": "2"},
    )
    servers.append(server)
    (stuck,) = mule_pids(server)
    app = Celery("harakiri_test", broker=redis.url, set_as_current=False)
    route(app, "reports")
    try:
        send_records(3, 1)
        deadline = time.monotonic() + 60
        while "HARAKIRI ON MULE 1" not in server.log_text() or len(mule_pids(server)) < 2:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.1)
        assert busy_tasks(records, {stuck}) == {3}, "killed inside the task"
        assert 3 not in executions(records).get(stuck, [])
    finally:
        unroute()
